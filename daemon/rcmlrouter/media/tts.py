"""``<Say>``: text to speech with espeak-ng (a subprocess), cached on disk by text+voice+language.

Twilio's ``voice`` (``man``, ``woman``, ``alice``, ``Polly.*``, ``Google.*``) picks espeak-ng's
male or female variant; ``language`` (``en-US``, ``en-GB``, ``es-MX``… or Restcomm's ``en``,
``es``…) picks the espeak-ng voice. espeak-ng writes a 22.05 kHz WAV to stdout, which is decoded
and resampled to 8 kHz like any ``<Play>`` file.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Final

from rcmlrouter.errors import MediaError
from rcmlrouter.media.audio import AudioClip, decode_wav
from rcmlrouter.media.cache import load_pcm, write_atomically

ESPEAK: Final = "espeak-ng"
WORDS_PER_MINUTE: Final = 160
MAX_TEXT: Final = 4096
MEMORY_ENTRIES: Final = 128

LANGUAGES: Final = {
    "en": "en-us", "en-us": "en-us", "en-gb": "en-gb", "en-au": "en-gb", "en-ca": "en-us",
    "en-in": "en-gb", "es": "es", "es-es": "es", "es-mx": "es-419", "es-us": "es-419",
    "fr": "fr", "fr-fr": "fr", "fr-ca": "fr", "de": "de", "de-de": "de", "it": "it",
    "it-it": "it", "pt": "pt", "pt-pt": "pt", "pt-br": "pt-br", "nl": "nl", "nl-nl": "nl",
    "ja": "ja", "ja-jp": "ja", "ko": "ko", "ko-kr": "ko", "zh": "cmn", "zh-cn": "cmn",
    "zh-tw": "cmn", "zh-hk": "yue", "ru": "ru", "ru-ru": "ru", "sv": "sv", "sv-se": "sv",
    "da": "da", "da-dk": "da", "nb": "nb", "nb-no": "nb", "no": "nb", "fi": "fi", "fi-fi": "fi",
    "pl": "pl", "pl-pl": "pl", "ca": "ca", "ca-es": "ca", "tr": "tr", "tr-tr": "tr",
}  # fmt: skip
FEMALE: Final = {"woman", "alice"}
MALE_POLLY: Final = {
    "matthew", "joey", "justin", "kevin", "brian", "russell", "geraint", "enrique", "miguel",
    "mathieu", "hans", "giorgio", "ricardo", "cristiano", "ruben", "takumi", "maxim", "jacek",
    "mads", "karl", "filiz",
}  # fmt: skip


def espeak_voice(voice: str, language: str) -> str:
    """The espeak-ng ``-v`` argument for Twilio's ``voice`` and ``language``."""
    lang = language.strip().lower().replace("_", "-")
    base = LANGUAGES.get(lang) or LANGUAGES.get(lang.split("-")[0], "en-us")
    name = voice.strip().lower()
    if name.startswith(("polly.", "google.")):
        short = name.split(".", 1)[1].split("-")[0]
        female = short not in MALE_POLLY and not name.endswith(("-b", "-d", "-j"))
    else:
        female = name in FEMALE
    return f"{base}+{'f3' if female else 'm3'}"


class SpeechSynthesizer:
    """Runs espeak-ng; keeps what it said under ``directory``."""

    def __init__(self, directory: Path, command: str = ESPEAK, timeout: float = 30.0) -> None:
        self.directory = directory
        self.command = command
        self.timeout = timeout
        self._memory: OrderedDict[str, AudioClip] = OrderedDict()
        self.synthesized = 0

    def _key(self, text: str, voice: str, language: str) -> str:
        return hashlib.sha256("\0".join((text, voice, language)).encode()).hexdigest()

    async def speak(self, text: str, voice: str = "man", language: str = "en-US") -> AudioClip:
        """Speech for ``text``. Raises MediaError (12300) when espeak-ng fails."""
        key = self._key(text, voice, language)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        path = self.directory / f"{key}.pcm"
        try:
            clip = await asyncio.to_thread(load_pcm, path)
        except OSError:
            wav = await self._run(text[:MAX_TEXT], espeak_voice(voice, language))
            clip = await asyncio.to_thread(decode_wav, wav)
            await asyncio.to_thread(write_atomically, path, clip.pcm.astype("<i2").tobytes())
            self.synthesized += 1
        self._memory[key] = clip
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)
        return clip

    async def _run(self, text: str, voice: str) -> bytes:
        args = ["-v", voice, "-s", str(WORDS_PER_MINUTE), "--stdout", "--stdin"]
        try:
            process = await asyncio.create_subprocess_exec(
                self.command,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise MediaError(f"cannot run {self.command}: {exc}", 12300) from exc
        try:
            async with asyncio.timeout(self.timeout):
                stdout, stderr = await process.communicate(text.encode("utf-8"))
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise MediaError(f"{self.command} took more than {self.timeout} s", 12300) from exc
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip()[:200]
            raise MediaError(f"{self.command} failed ({process.returncode}): {detail}", 12300)
        return stdout
