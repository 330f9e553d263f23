"""Live call control wired: a command about a live call goes to the node that runs the call.

:class:`NodeCallControl` is the API's :class:`~rcmlrouter.call_updates.CallControl`, for every
command (an update, a stream started or stopped, a conference change). A call this process runs
(or any call on SQLite, the one node) is commanded in-process (``calls/live_control.py``); a
call whose record names another node as its owner (a room whose row does) is sent there
through the cluster's command channel (``cluster/call_commands.py``), which answers with the
outcome. Each update is counted (``rcmlrouter_call_updates_total``) and timed
(``rcmlrouter_call_update_seconds``) by route (local, remote); the other commands are not.
"""

from __future__ import annotations

import time

from rcmlrouter import metrics
from rcmlrouter.call_updates import CallCommand, CallUpdate, UpdateResult
from rcmlrouter.calls.live_control import LocalCallControl
from rcmlrouter.cluster.call_commands import CallCommands


class NodeCallControl:
    """Local when the call runs here (or its owner is unknown or this node); else remote."""

    def __init__(
        self, local: LocalCallControl, node_id: str | None, commands: CallCommands | None
    ) -> None:
        self.local = local
        self.node_id = node_id
        self.commands = commands

    async def update(self, call_sid: str, owner: str | None, update: CallUpdate) -> UpdateResult:
        started = time.perf_counter()
        route, result = await self._route(call_sid, owner, update)
        metrics.CALL_UPDATE_SECONDS.labels(route).observe(time.perf_counter() - started)
        metrics.CALL_UPDATES.labels(route, result.outcome).inc()
        return result

    async def command(self, call_sid: str, owner: str | None, command: CallCommand) -> UpdateResult:
        if isinstance(command, CallUpdate):
            return await self.update(call_sid, owner, command)
        return (await self._route(call_sid, owner, command))[1]

    async def _route(
        self, call_sid: str, owner: str | None, command: CallCommand
    ) -> tuple[str, UpdateResult]:
        commands = self.commands
        if commands is None or owner is None or owner == self.node_id or self.local.runs(call_sid):
            return "local", await self.local.command(call_sid, command)
        return "remote", await commands.request(owner, call_sid, command)
