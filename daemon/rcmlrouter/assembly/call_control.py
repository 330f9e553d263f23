"""Live call control wired: an update goes to the node that runs the call.

:class:`NodeCallControl` is the API's :class:`~rcmlrouter.call_updates.CallControl`. A call this
process runs (or any call on SQLite, the one node) is updated in-process
(``calls/live_control.py``); a call whose record names another node as its owner is sent there
through the cluster's command channel (``cluster/call_commands.py``), which answers with the
outcome.
"""

from __future__ import annotations

from rcmlrouter.call_updates import CallUpdate, UpdateResult
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
        commands = self.commands
        if commands is None or owner is None or owner == self.node_id or self.local.runs(call_sid):
            return await self.local.apply(call_sid, update)
        return await commands.request(owner, call_sid, update)
