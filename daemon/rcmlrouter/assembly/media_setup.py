"""Call media: the RTP port pool (and the open-file limit it needs) and the media services."""

from __future__ import annotations

from pathlib import Path

import structlog

from rcmlrouter import metrics
from rcmlrouter.callbacks import CallbackOutbox
from rcmlrouter.cluster.node import node_id_for
from rcmlrouter.conference.recording import RecordingSpace
from rcmlrouter.conference.registry import ConferenceRegistry
from rcmlrouter.config import Config
from rcmlrouter.httpclient.client import HttpClient
from rcmlrouter.media.cache import AudioCache
from rcmlrouter.media.clock import MediaClock
from rcmlrouter.media.ports import RtpPortPool
from rcmlrouter.media.tts import SpeechSynthesizer
from rcmlrouter.openfiles import raise_open_files_limit
from rcmlrouter.services import MediaServices
from rcmlrouter.store.base import Store
from rcmlrouter.streams.connector import StreamConnector

log = structlog.get_logger("rcmlrouter.app")


def rtp_port_pool(config: Config) -> RtpPortPool:
    """The RTP port pool; the open-file limit raised to fit it, with a warning when it cannot."""
    pool = RtpPortPool(*config.media.port_range)
    budget = raise_open_files_limit()
    fields = {
        "soft": budget.soft,
        "hard": budget.hard,
        "raised_from": budget.raised_from,
        "rtp_port_pairs": pool.size,
        "calls_with_media": min(pool.size, budget.calls_with_media()),
    }
    metrics.RTP_PORTS.source = lambda: (pool.size, pool.in_use, pool.busy, pool.busy_found)
    if budget.calls_with_media() < pool.size:
        hint = "raise LimitNOFILE (systemd) or ulimit -n; calls past it are answered 503"
        log.warning("media.open_files_limit", hint=hint, **fields)
    else:
        log.info("media.open_files_limit", **fields)
    return pool


def media_services(config: Config, http: HttpClient, store: Store) -> MediaServices:
    """The media clock, ``<Play>``'s audio cache and ``<Say>``'s speech under the data
    directory (``cache/audio``, ``cache/speech``), recordings in ``recordings/``, the media
    streams' WebSocket client."""
    data = Path(config.data.dir)
    return MediaServices(
        MediaClock(),
        AudioCache(data / "cache" / "audio", http),
        SpeechSynthesizer(data / "cache" / "speech"),
        data / "recordings",
        store.add_recording,
        stream_connector(config, http),
    )


def stream_connector(config: Config, http: HttpClient) -> StreamConnector:
    """The media streams' WebSocket client, on the webhook client's deny-list-checked DNS."""
    streams = config.streams
    return StreamConnector(
        http.addresses,
        allow_insecure=streams.allow_insecure,
        connect_timeout=streams.connect_timeout,
        max_message=streams.max_message,
        send_queue=streams.send_queue,
    )


def conference_registry(
    config: Config, store: Store, outbox: CallbackOutbox, media: MediaServices
) -> ConferenceRegistry:
    """The rooms of ``<Dial><Conference>`` and their mixer on the media clock; this node's id
    is the owner recorded on its conferences."""
    space = RecordingSpace(media.recordings_dir, media.save_recording)
    node = node_id_for(config)
    return ConferenceRegistry(store, outbox, media.clock, node, space, config.cluster.lease)
