"""The media verbs: ``<Say>``, ``<Play>``, ``<Gather>`` and ``<Record>`` (SPEC §6).

They reach the call through the ``MediaLeg`` port (:mod:`rcmlrouter.rcml.ports`, part of the
executor's ``CallLeg``), which owns the audio: the handlers here only decide what happens next.
``<Pause>`` stays in ``execute`` (``CallLeg.pause``; the leg plays it as silence on the media
clock).

Decisions (Twilio's behaviour unless noted):

- ``<Play>`` or ``<Say>`` whose audio cannot be fetched or synthesised (:class:`MediaError`,
  11200 / 12300) is skipped with a notification; the document goes on.
- ``<Gather>``: its nested ``<Say>``/``<Play>``/``<Pause>`` play in order and stop at the first
  key press (that key counts). Then digits are collected until ``numDigits``, ``finishOnKey``
  (not included) or ``timeout`` seconds without a key. Digits → POST ``Digits`` to ``action``,
  whose document replaces the rest; no digits → the next verb. Without ``action`` the digits are
  dropped and the document goes on (Twilio would request the current document again; an RCML
  document here does not know its own URL).
- ``<Record>``: the leg stores the recording and returns the parameters for ``action``
  (``RecordingUrl``, ``RecordingDuration``, ``RecordingSid``, ``Digits``); the action's document
  replaces the rest. When the caller hung up the leg has already sent them (``Digits=hangup``)
  and the document ends. Without ``action`` the document goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from rcmlrouter.errors import MediaError
from rcmlrouter.rcml.model import Gather, GatherChild, Play, Record, Say
from rcmlrouter.rcml.verb_handler import STOP, Outcome, VerbRunner


async def _play_or_notify(
    executor: VerbRunner, verb: GatherChild, *, interruptible: bool = False
) -> str | None:
    try:
        return await executor.leg.play(verb, interruptible=interruptible)
    except MediaError as exc:
        executor.notify(exc.error_code, f"<{type(verb).__name__}> skipped: {exc}")
        return None


async def say_verb(executor: VerbRunner, verb: Say) -> Outcome:
    await executor.ensure_answered()
    await _play_or_notify(executor, verb)
    return None


async def play_verb(executor: VerbRunner, verb: Play) -> Outcome:
    await executor.ensure_answered()
    if verb.digits:
        await executor.leg.send_digits(verb.digits)
    if verb.url:
        await _play_or_notify(executor, verb)
    return None


async def gather_verb(executor: VerbRunner, verb: Gather) -> Outcome:
    await executor.ensure_answered()
    for child in verb.children:
        if await _play_or_notify(executor, child, interruptible=True) is not None:
            break  # a key was pressed: the prompt stops, the key is the first digit
    digits = await executor.leg.collect_digits(
        verb.num_digits or 0, verb.finish_on_key, float(verb.timeout)
    )
    if not digits or verb.action is None:
        return None
    return await executor.follow(verb.action, verb.method, {"Digits": digits})


async def record_verb(executor: VerbRunner, verb: Record) -> Outcome:
    await executor.ensure_answered()
    outcome = await executor.leg.record(verb)
    if outcome.caller_hung_up:
        return STOP
    if verb.action is None:
        return None
    return await executor.follow(verb.action, verb.method, outcome.params)


MEDIA_HANDLERS: dict[type[Any], Callable[[VerbRunner, Any], Awaitable[Outcome]]] = {
    Say: say_verb,
    Play: play_verb,
    Gather: gather_verb,
    Record: record_verb,
}
