"""<Play> audio over HTTP with ETag / Last-Modified revalidation, and espeak-ng speech."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from rcmlrouter.errors import MediaError
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.httpclient.deny import DenyList, parse_networks
from rcmlrouter.media.cache import AudioCache
from rcmlrouter.media.tts import SpeechSynthesizer, espeak_voice
from support.rawhttp import RawServer, send_segments
from support.tones import dominant_frequency, make_wav, sine


class AudioServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.body = make_wav(sine(1000, 0.5, 16000), 16000)
        self.etag: str | None = '"v1"'
        self.last_modified: str | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        name = request.match_info["name"]
        if name == "missing.wav":
            return web.Response(status=404)
        if name == "text.wav":
            return web.Response(text="<html>not audio</html>", content_type="text/html")
        headers = {}
        if self.etag:
            headers["ETag"] = self.etag
            if request.headers.get("If-None-Match") == self.etag:
                return web.Response(status=304, headers=headers)
        if self.last_modified:
            headers["Last-Modified"] = self.last_modified
            if request.headers.get("If-Modified-Since") == self.last_modified:
                return web.Response(status=304, headers=headers)
        return web.Response(body=self.body, headers=headers, content_type="audio/wav")


@pytest.fixture
async def server() -> AsyncIterator[tuple[AudioServer, str]]:
    audio_server = AudioServer()
    app = web.Application()
    app.router.add_get("/{name}", audio_server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield audio_server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_fetch_decode_cache_revalidate(server: tuple[AudioServer, str], tmp_path: Path):
    audio_server, base = server
    async with HttpClient() as session:
        cache = AudioCache(tmp_path, session)
        clip = await cache.clip(f"{base}/tone.wav")
        assert clip.duration == pytest.approx(0.5, abs=0.001)
        assert dominant_frequency(clip.pcm) == pytest.approx(1000, abs=3)
        again = await cache.clip(f"{base}/tone.wav")
        assert again is clip
        assert audio_server.requests[1]["If-None-Match"] == '"v1"'
        assert cache.revalidated == 1
        # a new process: the disk copy is revalidated, not downloaded
        fresh = AudioCache(tmp_path, session)
        disk = await fresh.clip(f"{base}/tone.wav")
        assert np.array_equal(disk.pcm, clip.pcm) and fresh.revalidated == 1
        # the file changed on the server: a new ETag, new audio
        audio_server.body = make_wav(sine(500, 0.25, 8000), 8000)
        audio_server.etag = '"v2"'
        changed = await cache.clip(f"{base}/tone.wav")
        assert changed.duration == pytest.approx(0.25, abs=0.001)


async def test_last_modified_revalidation(server: tuple[AudioServer, str], tmp_path: Path):
    audio_server, base = server
    audio_server.etag = None
    audio_server.last_modified = "Wed, 21 Oct 2015 07:28:00 GMT"
    async with HttpClient() as session:
        cache = AudioCache(tmp_path, session)
        await cache.clip(f"{base}/a.wav")
        await cache.clip(f"{base}/a.wav")
    assert audio_server.requests[1]["If-Modified-Since"] == audio_server.last_modified
    assert cache.revalidated == 1


async def test_fetch_errors(server: tuple[AudioServer, str], tmp_path: Path) -> None:
    _, base = server
    async with HttpClient() as session:
        cache = AudioCache(tmp_path, session)
        with pytest.raises(MediaError) as missing:
            await cache.clip(f"{base}/missing.wav")
        assert missing.value.error_code == 11200
        with pytest.raises(MediaError) as not_audio:
            await cache.clip(f"{base}/text.wav")
        assert not_audio.value.error_code == 12300
        with pytest.raises(MediaError) as refused:
            await cache.clip("http://127.0.0.1:9/nothing.wav")
        assert refused.value.error_code == 11200


async def test_stale_copy_when_the_server_is_gone(tmp_path: Path) -> None:
    audio_server = AudioServer()
    app = web.Application()
    app.router.add_get("/{name}", audio_server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/tone.wav"
    async with HttpClient() as session:
        first = await AudioCache(tmp_path, session).clip(url)
        await runner.cleanup()
        stale = await AudioCache(tmp_path, session).clip(url)
    assert np.array_equal(first.pcm, stale.pcm)


async def test_a_file_arriving_in_many_segments_is_read_whole(tmp_path: Path) -> None:
    """Issue 16 item 10: the body is read to its end, not to what the first read buffered."""
    body = make_wav(sine(700, 3.0, 8000), 8000)
    parts = [body[i : i + 4000] for i in range(0, len(body), 4000)]  # 13 segments

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await server.read_request(reader)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n"
        await send_segments(writer, head % len(body), *parts, gap=0.03)

    async with RawServer(slow) as server, HttpClient() as client:
        clip = await AudioCache(tmp_path, client).clip(str(server.url("/slow.wav")))
    assert clip.duration == pytest.approx(3.0, abs=0.001)


async def test_a_play_url_in_a_denied_network_is_refused(tmp_path: Path) -> None:
    """<Play> files go through the one HTTP client and its one deny list."""
    deny = DenyList(parse_networks(["127.0.0.0/8"]))
    async with RawServer(refuse_any_connection) as server, HttpClient(deny=deny) as client:
        with pytest.raises(MediaError) as refused:
            await AudioCache(tmp_path, client).clip(str(server.url("/tone.wav")))
    assert refused.value.error_code == 11200 and "deny_networks" in str(refused.value)
    assert server.connections == 0


async def refuse_any_connection(*_: object) -> None:
    raise AssertionError("a denied URL was connected to")


@pytest.mark.parametrize(
    ("voice", "language", "expected"),
    [
        ("man", "en-US", "en-us+m3"),
        ("woman", "en-GB", "en-gb+f3"),
        ("alice", "es-MX", "es-419+f3"),
        ("Polly.Joanna", "en-US", "en-us+f3"),
        ("Polly.Matthew", "en-US", "en-us+m3"),
        ("man", "fr", "fr+m3"),
        ("woman", "de_DE", "de+f3"),
        ("man", "xx-YY", "en-us+m3"),
        ("alice", "pt-PT", "pt+f3"),
    ],
)
def test_voice_mapping(voice: str, language: str, expected: str) -> None:
    assert espeak_voice(voice, language) == expected


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")


@needs_espeak
async def test_say_produces_speech_and_is_cached(tmp_path: Path) -> None:
    synthesizer = SpeechSynthesizer(tmp_path)
    clip = await synthesizer.speak("Hello world, this is a test.", "woman", "en-US")
    assert 1.0 < clip.duration < 5.0
    pcm = clip.pcm.astype(np.float64)
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    assert np.mean(rms > 300) > 0.4  # speech energy in most frames
    spectrum = np.abs(np.fft.rfft(pcm))
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    assert spectrum[(freqs > 100) & (freqs < 3400)].sum() > 0.9 * spectrum.sum()
    again = await SpeechSynthesizer(tmp_path).speak(
        "Hello world, this is a test.", "woman", "en-US"
    )
    assert np.array_equal(again.pcm, clip.pcm)
    other = await synthesizer.speak("Hello world, this is a test.", "man", "en-US")
    assert synthesizer.synthesized == 2 and not np.array_equal(other.pcm[:1000], clip.pcm[:1000])


async def test_say_without_espeak(tmp_path: Path) -> None:
    synthesizer = SpeechSynthesizer(tmp_path, command="/nonexistent/espeak-ng")
    with pytest.raises(MediaError):
        await synthesizer.speak("hi")
