"""One hostile mirror never ends the run for the others: a fleet behind real sshd, real nginx
and a real BIND 9, where each bad mirror is bad in its own way (a report no int() can read,
NaN in its report, a redirect to a URL httpx cannot even build, an answer that trickles). Every
good mirror still ends ok, the run finishes with its summary, its JSON (strict) and its DNS
step, and ``syncd monitor`` still writes its page.

The HTTP attacks (a gzip bomb, Content-Length over a chunked flood, a body cut short or swapped
under the release's header, an endless /local_test) each fail their mirror alone, and syncd's
memory stays its own: the peak RSS of each syncd process is read from the kernel
(``RUSAGE_CHILDREN``) after it ends."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from devtools.harness.cvd import DEFAULT_VERSIONS, release_time, write_release
from devtools.harness.documents import LAB_INVENTORY, report, write_secret
from devtools.harness.hostilehttp import (
    HostileHttp,
    RoutedHttp,
    answer,
    chunked_flood,
    endless,
    gzip_bomb,
)
from devtools.harness.named import Named
from devtools.harness.nginx import Nginx
from devtools.harness.sshkeys import KeyPair
from syncd.inventory.model import Mirror, parse_inventory
from syncd.publish import job as publish_job
from syncd.publish.config import Policy
from syncd.publish.job import PublishJob, publish_main
from syncd.publish.store import PublishStore
from syncd.sqlite import open_db
from tests.publish.fakes import BEHAVIOURS, MirrorFactory, _heredoc
from tests.publish.fixtures import FAST_POLICY, Syncd, by_name
from tests.publish.slowhttp import SlowHttp

HUGE = "9" * 5000  # past Python's int max str digits (4300): int() raises ValueError
REDIRECTS = ("javascript:x", "mailto:x", "data:,x")  # httpx.InvalidURL, not an HTTPError
PROOF_TIMEOUT = 3


def _strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in --json output")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def hostile_behaviours(monkeypatch: pytest.MonkeyPatch) -> None:
    ok = report()
    huge = ok.replace('"signatures": 1000', f'"signatures": {HUGE}', 1)
    nan = ok.replace('"duration_s": 1.0', '"duration_s": NaN', 1)
    assert huge != ok and nan != ok
    monkeypatch.setitem(BEHAVIOURS, "huge_int", _heredoc(huge) + "exit 0\n")
    monkeypatch.setitem(BEHAVIOURS, "nan", _heredoc(nan) + "exit 0\n")


@pytest.fixture
def redirectors() -> Iterator[list[HostileHttp]]:
    servers = [HostileHttp() for _ in REDIRECTS]
    for server, where in zip(servers, REDIRECTS, strict=True):
        answer = f"HTTP/1.1 302 Found\r\nLocation: {where}\r\nContent-Length: 0\r\n\r\n"
        server.queue(*[answer.encode()] * 20)
        server.__enter__()
    yield servers
    for server in servers:
        server.__exit__(None, None, None)


def test_each_hostile_mirror_fails_alone_and_the_run_ends_with_summary_dns_and_page(
    tmp_path: Path,
    fake_mirror: MirrorFactory,
    nginx_factory: Callable[..., Nginx],
    syncd: Syncd,
    hostile_behaviours: None,
    redirectors: list[HostileHttp],
) -> None:
    source = tmp_path / "source"
    write_release(source, **DEFAULT_VERSIONS)
    served = tmp_path / "served"
    write_release(served, **DEFAULT_VERSIONS)
    web = nginx_factory(served)
    good = fake_mirror("good.test", "ok")
    bare = fake_mirror("bare.test", "ok")  # no http: ok on its report alone, "unproven"
    huge = fake_mirror("huge.test", "huge_int")
    nan = fake_mirror("nan.test", "nan")
    redirecting = [fake_mirror(f"redirect{i}.test", "ok") for i in range(len(REDIRECTS))]
    slow_mirror = fake_mirror("slow.test", "ok")
    page = tmp_path / "status.html"
    with SlowHttp(interval_s=4.0) as slow, Named(tmp_path / "named") as named:
        secret = write_secret(tmp_path / "tsig.secret", named.secret)
        policy = (
            FAST_POLICY.replace("http_timeout = 3", "http_timeout = 10")
            + f"proof_timeout = {PROOF_TIMEOUT}\n"
            # a fleet built of attacks fails mostly by design: not the monitor's own outage
            + f'\n[monitor]\nrequest_timeout_s = 2\nrun_deadline_s = 60\nstatus_page = "{page}"\n'
            + "outage_share = 1.0\n"
            + f'\n[dns]\nserver = "{named.host}"\nport = {named.port}\n'
            f'key_name = "{named.key_name}"\nkey_secret_file = "{secret}"\ngate_share = 0.5\n'
        )
        syncd.write(
            good.inventory_block(http=web.base_url, country="PL")
            + bare.inventory_block(country="PL")
            + huge.inventory_block(http=web.base_url, country="DE")
            + nan.inventory_block(http=web.base_url, country="DE")
            + "".join(
                m.inventory_block(http=s.base_url, country="FR")
                for m, s in zip(redirecting, redirectors, strict=True)
            )
            + slow_mirror.inventory_block(http=slow.base_url, country="FR"),
            policy=policy,
        )
        started = time.monotonic()
        proc = syncd.run(
            "publish",
            "--config",
            str(syncd.config),
            "--json",
            "--source-tree",
            str(source),
            timeout=60,
        )
        took = time.monotonic() - started

        assert "Traceback" not in proc.stderr, proc.stderr
        doc = _strict(proc.stdout)  # strict JSON: no NaN re-emitted
        assert proc.returncode == 1, proc.stderr
        mirrors = by_name(doc)
        assert mirrors["good.test"]["outcome"] == "ok"
        assert mirrors["good.test"]["proof"] == "http"
        assert mirrors["bare.test"]["outcome"] == "ok"
        assert mirrors["bare.test"]["proof"] == "unproven"
        assert "unproven (1, ok on their own report, not checked over HTTP): bare.test" in (
            proc.stderr
        )
        assert mirrors["huge.test"]["outcome"] == "failed"
        assert "number" in mirrors["huge.test"]["error"], mirrors["huge.test"]
        assert mirrors["nan.test"]["outcome"] == "failed"
        assert "NaN" in mirrors["nan.test"]["error"], mirrors["nan.test"]
        for m, where in zip(redirecting, REDIRECTS, strict=True):
            assert mirrors[m.name]["outcome"] == "failed", mirrors[m.name]
            assert "unusable URL" in mirrors[m.name]["error"], (where, mirrors[m.name])
        slow_error = mirrors["slow.test"]["error"]
        assert mirrors["slow.test"]["outcome"] == "failed" and "proof_timeout" in slow_error
        # the slow mirror held nobody: the run ended soon after its proof's deadline, long
        # before the run's deadline (20 s)
        assert took < 17, (took, proc.stderr)
        assert "dns" in doc and doc["dns"]["gate"] is not None, doc.get("dns")
        assert f"run {doc['run_id']}: 2 of 8 mirrors serve the release" in proc.stderr

        # the record closed the run
        shown = syncd.run("runs", "show", doc["run_id"], "--config", str(syncd.config), "--json")
        assert _strict(shown.stdout)["state"] == "finished"

        # the monitor checks the same fleet: every hostile mirror is its own failed check
        mon = syncd.run(
            "monitor",
            "--once",
            "--no-mail",
            "--json",
            "--config",
            str(syncd.config),
            "--source-tree",
            str(source),
            timeout=90,
        )
        assert "Traceback" not in mon.stderr, mon.stderr
        assert mon.returncode == 0, mon.stderr
        summary = _strict(mon.stdout.strip().splitlines()[-1])
        states = {m["name"]: m["state"] for m in summary["mirrors"]}
        assert states["good.test"] == "fresh", summary
        assert page.exists() and "good.test" in page.read_text()
        for m in [*redirecting, slow_mirror]:
            assert states[m.name] != "fresh", (m.name, summary)


def test_an_error_no_adapter_translated_fails_that_mirror_only(
    tmp_path: Path, fake_mirror: MirrorFactory, keypair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault no real server produces on demand: the proof of one mirror raises a bug's
    exception. That mirror fails with the reason; the other ends ok and the run finishes."""
    fleet = [fake_mirror("good.test", "ok"), fake_mirror("buggy.test", "ok")]

    def prover(*args: Any, **kw: Any) -> Any:
        async def prove(mirror: Mirror, expected: Any) -> str | None:
            if mirror.name == "buggy.test":
                raise KeyError("daily")
            return None

        return prove

    monkeypatch.setattr(publish_job, "http_prover", prover)
    db = tmp_path / "state.sqlite"
    job = PublishJob(
        key=keypair.private,
        state=db,
        inventory=parse_inventory(
            LAB_INVENTORY + "".join(m.inventory_block(http="http://127.0.0.1:9") for m in fleet)
        ),
        inventory_path="inventory.toml",
        policy=Policy(connect_timeout=3, login_timeout=3, command_timeout=4, run_timeout=20),
        expected=dict(DEFAULT_VERSIONS),
    )
    outcome = trio.run(functools.partial(publish_main, job, None, handle_signals=False))
    results = {r.name: r for r in outcome.results}
    assert results["good.test"].outcome.value == "ok"
    assert results["good.test"].proof is not None and results["good.test"].proof.value == "http"
    assert results["buggy.test"].outcome.value == "failed"
    assert results["buggy.test"].error == "internal error: KeyError: 'daily'"
    run = PublishStore(open_db(db)).run(outcome.run_id)
    assert run is not None and run.state == "finished"


FLOOD = 1 << 30  # what the bomb inflates to and the flood sends: 1 GiB each
RSS_CEILING_MB = 400  # syncd publish and monitor peak at ~75-110 MB against a healthy fleet


def _run_peak(
    syncd: Syncd, *args: str, timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run syncd as `Syncd.run` does, and return with it that process's own peak RSS in MB
    (``wait4``: its rusage alone; RUSAGE_CHILDREN would give the largest of every child this
    test process has waited for, another test's included)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            syncd.argv(*args),
            stdout=out,
            stderr=err,
            text=True,
            cwd=syncd.workdir,
            env={**os.environ, "COLUMNS": "200"},
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
        return done, usage.ru_maxrss / 1024  # Linux: KiB


def _attacker(source: Path, attack: object) -> RoutedHttp:
    """A mirror answering a sound timestamp and the release's daily and main headers, and
    `attack` to the first CVD header asked for (bytecode: the proof reads the databases in name
    order)."""
    routes = {
        f"/{db}.cvd bytes=0-511": answer((source / f"{db}.cvd").read_bytes()[:512], PARTIAL)
        for db in ("daily", "main")
    }
    routes["/timestamp"] = (source / "timestamp").read_bytes()
    routes["/timestamp"] = answer(routes["/timestamp"])
    return RoutedHttp(
        {**routes, "/bytecode.cvd bytes=0-511": attack, "/local_test": endless(b"Success")}  # type: ignore[dict-item]
    )


PARTIAL = b"206 Partial Content"


def test_hostile_http_mirrors_fail_alone_and_syncd_memory_stays_bounded(
    tmp_path: Path,
    fake_mirror: MirrorFactory,
    nginx_factory: Callable[..., Nginx],
    syncd: Syncd,
) -> None:
    """Proven on the code before these checks were bounded: the bomb and flood mirrors ended
    ok with ``proof: http`` (their 1 GiB read and inflated: the publish peaked at 2.1 GB, past
    the ceiling), the cut and swapped mirrors ended ok (only their headers were read), and
    ``syncd mirrors check`` read the endless /local_test until the test's timeout."""
    source = tmp_path / "source"
    # built 2 h ago: past the monitor's lagging grace (1 h), a broken file is not fresh
    built = release_time() - timedelta(hours=2)
    write_release(source, **DEFAULT_VERSIONS, payload_size=20_000, build_time=built)
    head = (source / "bytecode.cvd").read_bytes()[:512]
    trees = {}
    for name in ("good", "cut", "swapped"):
        trees[name] = tmp_path / name
        shutil.copytree(source, trees[name])
    whole = (source / "daily.cvd").read_bytes()
    (trees["cut"] / "daily.cvd").write_bytes(whole[:-100])
    (trees["swapped"] / "daily.cvd").write_bytes(whole[:512] + bytes(reversed(whole[512:])))
    webs = {name: nginx_factory(tree) for name, tree in trees.items()}
    bomb = answer(
        gzip_bomb(head, FLOOD), b"206 Partial Content", b"Content-Encoding: gzip, gzip, gzip\r\n"
    )
    mirrors = {name: fake_mirror(f"{name}.test", "ok") for name in (*trees, "bomb", "flood")}
    with (
        _attacker(source, bomb) as bomber,
        _attacker(source, chunked_flood(head, FLOOD)) as flooder,
    ):
        urls = {**{n: w.base_url for n, w in webs.items()}, "bomb": bomber.base_url}
        urls["flood"] = flooder.base_url
        syncd.write(
            "".join(m.inventory_block(http=urls[n], country="PL") for n, m in mirrors.items()),
            # a fleet built of attacks fails mostly by design: not the monitor's own outage
            policy=FAST_POLICY
            + "\n[monitor]\nrequest_timeout_s = 3\nlagging_grace_h = 1\noutage_share = 1.0\n",
        )
        proc, publish_rss = _run_peak(
            syncd, "publish", "--config", str(syncd.config), "--json", "--source-tree", str(source)
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        results = by_name(_strict(proc.stdout))
        assert results["good.test"]["outcome"] == "ok", results["good.test"]
        assert results["good.test"]["proof"] == "http"
        wanted = {
            "bomb": "answered with Content-Encoding 'gzip, gzip, gzip'",
            "flood": "answered with both Content-Length and Transfer-Encoding",
            "cut": f"/daily.cvd is {len(whole) - 100} bytes, the release's is {len(whole)}",
            "swapped": "/daily.cvd's last 4096 bytes differ from the release's",
        }
        wrong = {
            name: (results[f"{name}.test"]["outcome"], results[f"{name}.test"]["error"])
            for name, why in wanted.items()
            if results[f"{name}.test"]["outcome"] != "failed"
            or why not in (results[f"{name}.test"]["error"] or "")
        }
        assert wrong == {}, (wrong, publish_rss)
        assert publish_rss < RSS_CEILING_MB, publish_rss
        assert proc.returncode == 1, proc.stderr

        mon, monitor_rss = _run_peak(
            syncd,
            "monitor",
            "--once",
            "--no-mail",
            "--json",
            "--config",
            str(syncd.config),
            "--source-tree",
            str(source),
        )
        assert mon.returncode == 0 and "Traceback" not in mon.stderr, mon.stderr
        states = {m["name"]: m["state"] for m in _strict(mon.stdout.splitlines()[-1])["mirrors"]}
        assert states["good.test"] == "fresh", states
        for name in wanted:
            assert states[f"{name}.test"] != "fresh", (name, states)
        assert monitor_rss < RSS_CEILING_MB, monitor_rss

        # an endless /local_test: read up to 64 bytes, then refused
        check, check_rss = _run_peak(
            syncd,
            "mirrors",
            "check",
            "bomb.test",
            "--config",
            str(syncd.config),
            "--http",
            bomber.base_url,
        )
        assert check.returncode == 1, check.stdout + check.stderr
        assert "Traceback" not in check.stderr, check.stderr
        assert "/local_test sends more than the 64 bytes asked for" in check.stdout, check.stdout
        assert check_rss < RSS_CEILING_MB, check_rss
