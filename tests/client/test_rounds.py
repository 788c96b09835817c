"""The queued-push protocol of ``sync()``: rounds while the mark is set, and the release race."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clientside.core.config import build_config, parse_config_text
from clientside.locking import SyncLock
from clientside.verbs import sync as sync_mod
from pushwire.request import Request


def _ctx(tmp_path: Path, max_rounds: int = 3) -> sync_mod.SyncContext:
    text = f"TO={tmp_path}/to\nSTATE_DIR={tmp_path}/var\nMAX_ROUNDS={max_rounds}\n"
    cfg = build_config(parse_config_text(text), home="/nonexistent", requested_source="r1")
    (tmp_path / "var").mkdir()
    return sync_mod.SyncContext(cfg, Request("sync", None, {}, None), "r1", "/", "/bin/true")


def _report() -> dict[str, Any]:
    return {"warnings": [], "status": "failed"}


def test_a_push_during_the_round_makes_it_go_round_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _ctx(tmp_path)
    calls = []

    def fake_round(c: Any, report: dict[str, Any], lock: SyncLock) -> None:
        calls.append(1)
        if len(calls) == 1:
            lock.set_mark("pushed-meanwhile")
        report["status"] = "ok"

    monkeypatch.setattr(sync_mod, "_run_round", fake_round)
    rep = _report()
    sync_mod.sync(ctx, rep)
    assert rep["rounds"] == 2 and len(calls) == 2
    assert not SyncLock(ctx.config.state_dir).mark_set()


def test_a_mark_left_just_after_release_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _ctx(tmp_path)
    calls = []
    monkeypatch.setattr(sync_mod, "_run_round", lambda c, r, lock: calls.append(1))
    real_release = SyncLock.release
    released = []

    def release_then_push(self: SyncLock) -> None:
        real_release(self)
        released.append(1)
        if len(released) == 1:  # a push failed to get the lock and left its mark right now
            self.set_mark("late")

    monkeypatch.setattr(SyncLock, "release", release_then_push)
    rep = _report()
    sync_mod.sync(ctx, rep)
    assert len(calls) == 2 and rep["rounds"] == 2


def test_rounds_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = _ctx(tmp_path, max_rounds=2)
    calls = []

    def always_pushed(c: Any, report: dict[str, Any], lock: SyncLock) -> None:
        calls.append(1)
        lock.set_mark("again")

    monkeypatch.setattr(sync_mod, "_run_round", always_pushed)
    rep = _report()
    sync_mod.sync(ctx, rep)
    assert len(calls) == 2
    assert any("still queued" in w for w in rep["warnings"])


def test_queued_when_the_lock_is_held(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    holder = SyncLock(ctx.config.state_dir)
    assert holder.try_acquire()
    try:
        rep = _report()
        sync_mod.sync(ctx, rep)
        assert rep["status"] == "queued"
        assert holder.mark_set()
    finally:
        holder.release()
