"""A publish reads its inputs once: `prepare` and `finish` (``syncd.publish.command``), with the
push between them run in-process against a real sshd and the release gate against a real BIND
primary, open each CVD of the source tree once (its header and its tail in one open) and read
the inventory once.

Proven to fail: with ``syncd/files.py`` as it was before (`read_source_tree` read the headers,
then opened each CVD again for its tail), each CVD was opened twice."""

from __future__ import annotations

import builtins
import io
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from devtools.harness.cvd import DEFAULT_VERSIONS, write_release
from devtools.harness.documents import write_secret
from devtools.harness.named import Named
from devtools.harness.nginx import Nginx
from syncd.files import load_config
from syncd.publish.command import Inputs, finish, prepare
from syncd.publish.job import publish_main
from syncd.publish.outcome import PushOutcome
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import FAST_POLICY, Syncd


class Opened:
    """Every file opened (by path, resolved) while counting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, under: Path) -> None:
        self.files: Counter[str] = Counter()
        real = io.open

        def counting(file: object, *args: object, **kwargs: object) -> object:
            if isinstance(file, (str, Path)) and Path(file).resolve().is_relative_to(under):
                self.files[str(Path(file).resolve().relative_to(under))] += 1
            return real(file, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr(io, "open", counting)  # what Path.open calls
        monkeypatch.setattr(builtins, "open", counting)


def test_prepare_and_finish_open_each_cvd_once_and_read_the_inventory_once(
    tmp_path: Path,
    fake_mirror: MirrorFactory,
    nginx_factory: Callable[..., Nginx],
    syncd: Syncd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = syncd.workdir / "source"
    write_release(source, **DEFAULT_VERSIONS)
    served = tmp_path / "served"
    write_release(served, **DEFAULT_VERSIONS)
    web = nginx_factory(served)
    good = fake_mirror("good.test", "ok")
    with Named(tmp_path / "named") as named:
        secret = tmp_path / "tsig.secret"
        write_secret(secret, named.secret)
        syncd.write(
            good.inventory_block(http=web.base_url, country="PL"),
            policy=FAST_POLICY
            + f'\n[dns]\nserver = "{named.host}"\nport = {named.port}\n'
            + f'key_name = "{named.key_name}"\nkey_secret_file = "{secret}"\n',
        )
        cfg, _ = load_config(syncd.config)
        inputs = Inputs(syncd.inventory, syncd.key, syncd.state, sources=False)
        opened = Opened(monkeypatch, syncd.workdir.resolve())
        prepared = prepare(cfg, inputs, only=[], tree=source)
        outcome = trio.run(publish_main, prepared.job)
        assert [r.outcome for r in outcome.results] == [PushOutcome.OK]
        done = finish(cfg, prepared, outcome, gate=True, dry_run=False, now=time.time())
        assert done.dns is not None and done.dns.error is None, done
        assert done.dns.gate is not None and done.dns.gate.reached, done
        cvds = {f"source/{db}.cvd": 1 for db in DEFAULT_VERSIONS}
        assert {n: c for n, c in opened.files.items() if n.endswith(".cvd")} == cvds
        assert opened.files["inventory.toml"] == 1
