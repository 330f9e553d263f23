"""The stream verbs: ``<Connect><Stream>``, ``<Start><Stream>`` and ``<Stop><Stream>``.

They reach the call's streams through the executor's ``StreamControl`` port
(:mod:`rcmlrouter.rcml.ports`); the call wing runs the sockets. Decisions (Twilio's behaviour):

- ``<Connect>`` answers the call and waits until the stream ends: the agent closed the socket,
  it could not be connected or dropped (stream-error and a notification), or the call ended.
  Then ``action`` is requested (its document replaces the rest) or the next verb runs; when the
  call ended, the document ends.
- ``<Start>`` answers the call, starts the stream and goes on at once; ``<Stop>`` ends the
  stream of that name (none of that name: nothing happens).
- A leg without media of its own (none today) answers these with 12200, as unsupported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rcmlrouter.rcml.model import Connect, Start, Stop
from rcmlrouter.rcml.verb_handler import STOP, Outcome, VerbRunner

NOT_SUPPORTED = 12200


def _unsupported(executor: VerbRunner, name: str) -> Outcome:
    executor.notify(NOT_SUPPORTED, f"<{name}> is not supported on this call; the call was hung up")
    return STOP


async def connect_verb(executor: VerbRunner, verb: Connect) -> Outcome:
    if executor.streams is None:
        return _unsupported(executor, "Connect")
    await executor.ensure_answered()
    outcome = await executor.streams.connect(verb.stream)
    if outcome.call_ended:
        return STOP
    if verb.action is None:
        return None
    return await executor.follow(verb.action, verb.method, outcome.params)


async def start_verb(executor: VerbRunner, verb: Start) -> Outcome:
    if executor.streams is None:
        return _unsupported(executor, "Start")
    await executor.ensure_answered()
    await executor.streams.start(verb.stream)
    return None


async def stop_verb(executor: VerbRunner, verb: Stop) -> Outcome:
    if executor.streams is not None:
        await executor.streams.stop(verb.name)
    return None


STREAM_HANDLERS: dict[type[Any], Callable[[VerbRunner, Any], Awaitable[Outcome]]] = {
    Connect: connect_verb,
    Start: start_verb,
    Stop: stop_verb,
}
