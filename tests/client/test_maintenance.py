"""``clam-clientsync maintenance``: the admin announces, shows and cancels a window; every
report carries it. The real client, run as a process (and as a function, its clock injected).

Proven to fail: before the verb existed every test here failed (``maintenance`` was read as a
SOURCE); with ``read_notice`` following symlinks (``os.stat`` for ``os.lstat``, no
O_NOFOLLOW) the symlink test failed (the link's target was read as the notice); with the
report key left out, the report test failed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from clientside.verbs.maintenance import run_maintenance
from pushwire.maintenance import DAY, MAX_NOTICE_BYTES, NOTICE_NAME, parse_notice
from tests.client.conftest import PY39, Mirror


def _cli(m: Mirror, *args: str, now: float) -> int:
    return run_maintenance(["--config", str(m.config), *args], str(m.root), now=lambda: now)


def test_announce_show_report_cancel(
    bare_mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    m = bare_mirror
    res = m.run(
        argv=[
            "maintenance",
            "--config",
            str(m.config),
            "--from",
            "+1h",
            "--until",
            "+3h",
            "--reason",
            "new disks",
        ]
    )
    assert res.rc == 0, res.stderr
    assert "announced: maintenance from" in res.stdout and "new disks" in res.stdout
    path = m.to / NOTICE_NAME
    notice = parse_notice(path.read_bytes())
    assert notice.ends - notice.starts == 2 * 3600 and notice.reason == "new disks"
    assert path.stat().st_mode & 0o777 == 0o644  # the web server reads it
    # every report carries it, whatever the verb
    rep = m.run(command="version").report
    assert rep["maintenance"] == json.loads(path.read_bytes())
    status = m.run(command="status").report
    assert status["maintenance"] == rep["maintenance"]
    shown = m.run(argv=["maintenance", "--config", str(m.config), "--show"])
    assert shown.rc == 0 and "starts in 1.0 h" in shown.stdout
    gone = m.run(argv=["maintenance", "--config", str(m.config), "--cancel"])
    assert gone.rc == 0 and not path.exists()
    assert m.run(command="version").report["maintenance"] is None
    again = m.run(argv=["maintenance", "--config", str(m.config), "--cancel"])
    assert again.rc == 0 and "nothing to cancel" in again.stdout


def test_a_notice_past_its_end_is_ignored(
    bare_mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    now = time.time()
    assert _cli(bare_mirror, "--until", "+1h", "--reason", "reboot", now=now) == 0
    capsys.readouterr()
    assert _cli(bare_mirror, "--show", now=now + 1800) == 0
    assert "on now" in capsys.readouterr().out
    assert _cli(bare_mirror, "--show", now=now + 3600) == 0
    assert capsys.readouterr().out.strip() == "no maintenance announced"


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--until", "+100w", "--reason", "x"], "longer than 168 h"),
        (
            [
                "--from",
                "2026-03-01T00:00:00Z",
                "--until",
                "2126-03-01T00:00:00Z",  # text only (noqa: date)
                "--reason",
                "a century",
            ],
            "longer than",
        ),
        (["--until", "+8d", "--reason", "x"], "longer than 168 h (7 days)"),
        (["--from", "+2h", "--until", "+1h", "--reason", "x"], "before it starts"),
        (["--until", "+1h", "--reason", " \n\t "], "the reason is empty"),
        (["--until", "tomorrow", "--reason", "x"], "is not a time"),
        (["--until", "+1h"], "needs --until WHEN and --reason"),
        (["--cancel", "--show"], "one of them"),
        (["--until", "+1h", "--reason", "x", "--max-days", "0"], "--max-days"),
        (["--until", "+1h", "--reason", "x", "--bogus"], "unrecognized"),
    ],
)
def test_a_bad_window_is_one_line_and_exit_64(
    bare_mirror: Mirror, capsys: pytest.CaptureFixture[str], args: list[str], why: str
) -> None:
    assert _cli(bare_mirror, *args, now=time.time()) == 64
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1 and err.startswith("clam-clientsync maintenance:")
    assert not (bare_mirror.to / NOTICE_NAME).exists()


def test_a_longer_window_when_the_admin_allows_it(bare_mirror: Mirror) -> None:
    now = time.time()
    assert _cli(bare_mirror, "--until", "+8d", "--reason", "move", "--max-days", "10", now=now) == 0
    notice = parse_notice((bare_mirror.to / NOTICE_NAME).read_bytes(), max_s=10 * DAY)
    assert notice.ends - notice.starts == 8 * DAY


def test_the_reason_is_cleaned_of_controls_and_bidi(bare_mirror: Mirror) -> None:
    hostile = "disks\n\x1b[2J\u202edelif\u200b  <b>x</b> " + "z" * 400
    assert _cli(bare_mirror, "--until", "+1h", "--reason", hostile, now=time.time()) == 0
    reason = json.loads((bare_mirror.to / NOTICE_NAME).read_bytes())["reason"]
    assert reason.startswith("disks [2Jdelif <b>x</b> zzz") and len(reason) == 200


def test_a_symlink_named_local_maintenance_is_never_followed(
    bare_mirror: Mirror, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = bare_mirror
    secret = tmp_path / "secret.json"
    now = time.time()
    secret.write_text(json.dumps({"maintenance_version": 1, "from": "x"}))
    link = m.to / NOTICE_NAME
    link.symlink_to(secret)
    assert _cli(m, "--show", now=now) == 1
    assert "is a symlink: ignored" in capsys.readouterr().err
    rep = m.run(command="version").report
    assert rep["maintenance"] is None
    assert any("is a symlink: ignored" in w for w in rep["warnings"])
    # announcing replaces the link with the file; the link's target is untouched
    before = secret.read_bytes()
    assert _cli(m, "--until", "+1h", "--reason", "x", now=now) == 0
    assert not link.is_symlink() and secret.read_bytes() == before
    link.unlink()
    link.symlink_to(secret)
    assert _cli(m, "--cancel", now=now) == 0  # removes the link, not what it points at
    assert not os.path.lexists(link) and secret.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{" + b" " * MAX_NOTICE_BYTES + b"}", "larger than"),
        (b"<html>maintenance</html>", "not one JSON object"),
        (
            b'{"maintenance_version": 1, "from": "2026-03-01T00:00:00Z", '  # text only (noqa: date)
            b'"until": "2126-03-01T00:00:00Z", "reason": "x"}',
            "longer than",
        ),  # text only (noqa: date)
    ],
)
def test_a_file_that_is_no_notice_is_reported_as_none_with_a_warning(
    bare_mirror: Mirror, content: bytes, why: str
) -> None:
    (bare_mirror.to / NOTICE_NAME).write_bytes(content)
    rep = bare_mirror.run(command="version").report
    assert rep["maintenance"] is None
    assert any(why in w and NOTICE_NAME in w for w in rep["warnings"]), rep["warnings"]


@pytest.mark.skipif(not PY39.exists(), reason="no Python 3.9 here")
def test_the_verb_runs_on_python_39(bare_mirror: Mirror) -> None:
    m = bare_mirror
    argv = ["maintenance", "--config", str(m.config), "--until", "+2h", "--reason", "py39"]
    res = m.run(argv=argv, python=str(PY39))
    assert res.rc == 0, res.stderr
    assert m.run(command="version", python=str(PY39)).report["maintenance"]["reason"] == "py39"
