"""``<Play>`` audio: fetched over HTTP, decoded once, cached on disk (and in memory) by URL.

Each URL has two files under the cache directory, named by the SHA-256 of the URL: ``.pcm``
(8 kHz mono 16-bit, ready to encode) and ``.json`` (the URL and its ``ETag`` / ``Last-Modified``).
A later play revalidates with ``If-None-Match`` / ``If-Modified-Since``; a 304 reuses the decoded
audio. When the server cannot be reached but a cached copy exists, the copy is played.

Files come through the daemon's one HTTP client (:mod:`rcmlrouter.httpclient`, with its
``webhooks.deny_networks`` check), which reads the whole body, however it is segmented, up to
``MAX_BYTES``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from yarl import URL

from rcmlrouter.errors import MediaError
from rcmlrouter.httpclient.client import HttpClient, HttpResponse
from rcmlrouter.httpclient.failures import HttpFailure, TooLarge
from rcmlrouter.media.audio import AudioClip, decode_wav

MAX_BYTES: Final = 64 * 1024 * 1024
MEMORY_ENTRIES: Final = 64


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None

    def request_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def load_pcm(path: Path) -> AudioClip:
    return AudioClip(np.frombuffer(path.read_bytes(), "<i2").astype(np.int16))


class AudioCache:
    """Decoded audio by URL, fetched with the daemon's shared HTTP client."""

    def __init__(self, directory: Path, client: HttpClient, timeout: float = 10.0):
        self.directory = directory
        self.client = client
        self.timeout = timeout
        self._memory: OrderedDict[str, tuple[Validators, AudioClip]] = OrderedDict()
        self.fetches = 0
        self.revalidated = 0

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.directory / f"{key}.pcm", self.directory / f"{key}.json"

    async def clip(self, url: str) -> AudioClip:
        """The audio at ``url``, revalidated. Raises MediaError (11200 fetch, 12300 format)."""
        cached = await self._cached(url)
        headers = cached[0].request_headers() if cached else {}
        try:
            response = await self._get(url, headers)
        except TooLarge as exc:
            raise MediaError(f"GET {url}: larger than {MAX_BYTES} bytes", 12300, url) from exc
        except HttpFailure as exc:
            if cached:
                return cached[1]  # stale, but better than silence
            raise MediaError(f"GET {url}: {exc}", 11200, url) from exc
        self.fetches += 1
        if response.status == 304 and cached:
            self.revalidated += 1
            return cached[1]
        if response.status != 200:
            raise MediaError(f"GET {url}: HTTP {response.status}", 11200, url)
        validators = Validators(response.header("ETag"), response.header("Last-Modified"))
        clip = await asyncio.to_thread(decode_wav, response.body)
        await asyncio.to_thread(self._store, url, validators, clip)
        self._remember(url, validators, clip)
        return clip

    async def _get(self, url: str, headers: dict[str, str]) -> HttpResponse:
        """The whole response to ``GET url``, its body read to the end (at most MAX_BYTES)."""
        try:
            target = URL(url)
        except (ValueError, TypeError) as exc:
            raise MediaError(f"GET {url}: not a URL", 11200, url) from exc
        if target.scheme not in ("http", "https") or not target.host:
            raise MediaError(f"GET {url}: not an http(s) URL", 11200, url)
        return await self.client.request(
            "GET",
            target,
            {"User-Agent": "rcmlrouter", **headers},
            None,
            connect=self.timeout,
            read=self.timeout,
            total=self.timeout,
            max_body=MAX_BYTES,
            max_redirects=5,
        )

    async def _cached(self, url: str) -> tuple[Validators, AudioClip] | None:
        if url in self._memory:
            self._memory.move_to_end(url)
            return self._memory[url]
        pcm_path, meta_path = self._paths(url)
        try:
            meta = json.loads(await asyncio.to_thread(meta_path.read_text))
            clip = await asyncio.to_thread(load_pcm, pcm_path)
        except (OSError, ValueError):
            return None
        validators = Validators(meta.get("etag"), meta.get("last_modified"))
        self._remember(url, validators, clip)
        return validators, clip

    def _store(self, url: str, validators: Validators, clip: AudioClip) -> None:
        pcm_path, meta_path = self._paths(url)
        write_atomically(pcm_path, clip.pcm.astype("<i2").tobytes())
        meta = {"url": url, "etag": validators.etag, "last_modified": validators.last_modified}
        write_atomically(meta_path, json.dumps(meta).encode())

    def _remember(self, url: str, validators: Validators, clip: AudioClip) -> None:
        self._memory[url] = (validators, clip)
        self._memory.move_to_end(url)
        while len(self._memory) > MEMORY_ENTRIES:
            self._memory.popitem(last=False)
