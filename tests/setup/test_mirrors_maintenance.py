"""`syncd mirrors set NAME maintenance=FROM..UNTIL reason=...`: a window announced by mail,
kept in the inventory (comments kept), cleared with ``maintenance=``; a bad one refused in one
line, the file left as it was.

Proven to fail: before ``maintenance`` was settable every test here failed (``'maintenance'
cannot be set``); with the CLI's bound check removed, the week test failed (the window was
written)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pushwire.maintenance import format_time, parse_time
from syncd.cli import app
from syncd.inventory.model import InventoryError, parse_inventory
from tests.setup.test_mirrors_set import inv, mirror

__all__ = ["inv"]
runner = CliRunner()
NOW = 1_800_000_000.0  # text only: no clock reads these (noqa: date)
START, END = format_time(NOW), format_time(NOW + 7200)


def _set(path: Path, *words: str) -> tuple[int, str]:
    done = runner.invoke(
        app, ["mirrors", "set", "clamav.example.org", *words, "--inventory", str(path)]
    )
    return done.exit_code, done.output


def test_set_then_clear_a_window(inv: Path) -> None:
    code, out = _set(inv, f"maintenance={START}..{END}", "reason=new disks\u202e")
    assert code == 0, out
    assert out.strip() == f"clamav.example.org: set maintenance={START}..{END} reason='new disks'"
    window = mirror(inv)["maintenance"]
    assert window == {"start": START, "end": END, "reason": "new disks"}
    text = inv.read_text()
    assert "# the team's notes stay" in text and "maintenance = {" in text
    assert parse_time(START) == NOW
    code, out = _set(inv, "maintenance=")
    assert code == 0, out
    assert mirror(inv)["maintenance"] is None and "maintenance" not in inv.read_text()


@pytest.mark.parametrize(
    ("words", "why"),
    [
        ([f"maintenance={START}..{format_time(NOW + 8 * 86400)}", "reason=x"], "longer than 168 h"),
        (
            [f"maintenance={START}..{format_time(NOW + 100 * 365 * 86400)}", "reason=x"],
            "longer than",
        ),
        ([f"maintenance={END}..{START}", "reason=x"], "before it starts"),
        ([f"maintenance={START}", "reason=x"], "is not FROM..UNTIL"),
        ([f"maintenance={START}..{END}"], "needs reason=TEXT"),
        ([f"maintenance={START}..{END}", "reason=\x1b\u200b"], "needs reason=TEXT"),
        (["reason=x"], "goes with maintenance="),
        (["maintenance=", "reason=x"], "clears the window"),
        (["maintenance=tomorrow..later", "reason=x"], "is not a time"),
        ([f"maintenance={START}..{END}", "reason=a\nb"], "line break"),
    ],
)
def test_a_bad_window_is_refused_and_nothing_written(inv: Path, words: list[str], why: str) -> None:
    before = inv.read_text()
    code, out = _set(inv, *words)
    assert code != 0 and why in out, out
    assert inv.read_text() == before


def test_a_longer_bound_from_syncd_toml(inv: Path, tmp_path: Path) -> None:
    config = tmp_path / "syncd.toml"
    config.write_text("[monitor]\nmaintenance_max_days = 10\n")
    end = format_time(NOW + 8 * 86400)
    code, out = _set(inv, f"maintenance={START}..{end}", "reason=move", "--config", str(config))
    assert code == 0, out
    assert mirror(inv)["maintenance"]["end"] == end  # type: ignore[index]


def test_a_window_written_by_hand_is_validated_on_reading(inv: Path) -> None:
    text = inv.read_text().rstrip() + '\nmaintenance = { start = "x", end = "y" }\n'
    with pytest.raises(InventoryError, match="maintenance"):
        parse_inventory(text)
    bad = (
        inv.read_text().rstrip()
        + f'\nmaintenance = {{ start = "{START}", end = "{END}", x = 1 }}\n'
    )
    with pytest.raises(InventoryError, match=r"unknown key 'maintenance\.x'"):
        parse_inventory(bad)
