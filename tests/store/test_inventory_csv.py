"""The inventory CSV reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcmlrouter.errors import ConfigError
from rcmlrouter.store.inventory_csv import HEADER, read_inventory_csv

DEMO = Path(__file__).resolve().parents[2] / "config" / "inventory.demo.csv"


def test_demo_inventory_is_valid_and_has_the_seed_numbers() -> None:
    entries = read_inventory_csv(DEMO)
    phones = {e.phone_number: e for e in entries}
    assert "+15105555555" in phones
    assert len(entries) >= 40
    assert {e.number_type for e in entries} == {"local", "toll-free", "mobile"}
    assert any(e.beta for e in entries)
    assert len({e.phone_number[:5] for e in entries if e.number_type == "local"}) >= 5


def test_rows_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "inv.csv"
    path.write_text(
        ",".join(HEADER)
        + "\n(510) 555-5555,us,Local,CA,Oakland,94612,722,TRUE,true,false,false,true\n"
    )
    (entry,) = read_inventory_csv(path)
    assert entry.phone_number == "+15105555555" and entry.iso_country == "US"
    assert entry.number_type == "local" and entry.beta and not entry.capabilities.mms


def test_every_bad_row_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "inv.csv"
    path.write_text(
        ",".join(HEADER)
        + "\n+15105555555,US,local,,,,,true,true,true,false,false"
        + "\nnope,US,local,,,,,true,true,true,false,false"
        + "\n+16175551212,US,landline,,,,,yes,true,true,false,false"
        + "\n+15105555555,US,local,,,,,true,true,true,false,false"
        + "\n+16175551212,US\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_inventory_csv(path)
    problems = caught.value.problems
    assert [p.split(":")[1].strip() for p in problems] == ["line 3", "line 4", "line 5", "line 6"]
    assert "landline" in problems[1] and "voice" in problems[1]


def test_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "inv.csv"
    path.write_text("number,country\n")
    with pytest.raises(ConfigError, match="header"):
        read_inventory_csv(path)
