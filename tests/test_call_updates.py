"""call_updates.py: an update survives the trip between nodes (a long Twiml deflated to fit a
NOTIFY payload), and each node's command channel name fits PostgreSQL's identifiers."""

from __future__ import annotations

import json

from rcmlrouter.call_updates import CallUpdate
from rcmlrouter.cluster.call_commands import channel_for


def test_an_update_travels_as_compact_json() -> None:
    short = CallUpdate(url="http://x/y", method="GET", status_callback="")
    assert short.to_wire() == {"url": "http://x/y", "method": "GET", "status_callback": ""}
    assert CallUpdate.from_wire(json.loads(json.dumps(short.to_wire()))) == short
    twiml = "<Response>" + "<Say>héllo wörld, 你好</Say>" * 150 + "</Response>"
    long = CallUpdate(twiml=twiml, base_url="http://api/")
    wire = json.dumps(long.to_wire(), ensure_ascii=False).encode()
    assert len(wire) < 1000 < len(twiml.encode())  # deflated
    assert CallUpdate.from_wire(json.loads(wire)) == long
    assert CallUpdate().empty and not CallUpdate(status="completed").empty


def test_channels_are_per_schema_and_node_and_fit_a_name() -> None:
    names = {channel_for(s, n) for s in ("public", "t_1") for n in ("node-a", "node-b")}
    assert len(names) == 4
    assert all(len(name) <= 63 and name.isidentifier() for name in names)


def test_a_time_limit_travels_and_makes_an_update_not_empty() -> None:
    update = CallUpdate(time_limit=90)
    assert not update.empty
    assert CallUpdate.from_wire(json.loads(json.dumps(update.to_wire()))) == update
    assert CallUpdate.from_wire(json.loads(json.dumps(CallUpdate().to_wire()))).time_limit is None
