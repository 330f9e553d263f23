"""A Pipecat voice agent (the independent peer of the media-stream tests), run as a subprocess.

Pipecat's ``TwilioFrameSerializer`` behind its ``WebsocketServerTransport``: when the daemon's
stream connects the agent speaks a tone (``--tone`` Hz for ``--tone-seconds``; Pipecat paces it
in real time), and it hears the caller: every ``InputAudioRawFrame`` and ``InputDTMFFrame`` that
reaches the pipeline is kept. When the stream ends (the caller hung up: the daemon sends
``stop`` and closes) it writes one JSON object to ``--out``: the caller's audio's dominant
frequency, its length and the digits heard. Prints ``ready`` once it listens.

    python pipecat_agent.py --port 8765 --out result.json [--tone 1000] [--tone-seconds 3]
        [--interrupt-after S]

``--interrupt-after S``: S seconds after the stream connects the agent barges in (Pipecat's
``InterruptionFrame``: its output transport drops its audio and the serializer sends Twilio's
``clear``); ``clear_at`` in the result is ``time.monotonic()`` then (one clock for every process
of the machine, so the test can compare it with when the caller's audio stopped).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.server import WebsocketServerParams, WebsocketServerTransport

RATE = 8000


class Ears(FrameProcessor):
    """Keeps what the caller says and presses; passes every frame on."""

    def __init__(self) -> None:
        super().__init__()
        self.audio = bytearray()
        self.digits: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.audio += frame.audio
        elif isinstance(frame, InputDTMFFrame):
            self.digits.append(str(frame.button.value))
        await self.push_frame(frame, direction)


def dominant(pcm: np.ndarray) -> float:
    if len(pcm) < 800:
        return 0.0
    windowed = pcm.astype(np.float64) * np.hanning(len(pcm))
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.fft.rfftfreq(len(pcm), 1 / RATE)[int(np.argmax(spectrum[1:])) + 1])


async def main(options: argparse.Namespace) -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    serializer = TwilioFrameSerializer(
        stream_sid="MZ-set-by-the-daemon",
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False, sample_rate=RATE),
    )
    transport = WebsocketServerTransport(
        host="127.0.0.1",
        port=options.port,
        params=WebsocketServerParams(
            serializer=serializer,
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=RATE,
            audio_out_sample_rate=RATE,
            add_wav_header=False,
        ),
    )
    ears = Ears()
    task = PipelineTask(
        Pipeline([transport.input(), ears, transport.output()]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
    )
    t = np.arange(int(options.tone_seconds * RATE)) / RATE
    tone = (0.4 * 32767 * np.sin(2 * np.pi * options.tone * t)).astype("<i2").tobytes()

    clear_at: list[float] = []

    async def interrupt() -> None:
        await asyncio.sleep(options.interrupt_after)
        clear_at.append(time.monotonic())
        await task.queue_frame(InterruptionFrame())

    @transport.event_handler("on_client_connected")
    async def on_connected(_transport: object, _client: object) -> None:
        await task.queue_frames([OutputAudioRawFrame(tone, RATE, 1)])
        if options.interrupt_after is not None:
            asyncio.get_running_loop().create_task(interrupt())

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(_transport: object, _client: object) -> None:
        pcm = np.frombuffer(bytes(ears.audio), "<i2")
        result = {
            "seconds": len(pcm) / RATE,
            "frequency": dominant(pcm[RATE // 2 :]),
            "digits": ears.digits,
            "clear_at": clear_at[0] if clear_at else None,
        }
        with open(options.out, "w") as out:
            json.dump(result, out)
        await task.cancel()

    print("ready", flush=True)
    await PipelineRunner(handle_sigint=True).run(task)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tone", type=float, default=1000.0)
    parser.add_argument("--tone-seconds", type=float, default=3.0)
    parser.add_argument("--interrupt-after", type=float)
    asyncio.run(main(parser.parse_args()))
