"""syncd publish against real sshd servers forcing fake clients: every fault a mirror can show."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from devtools.harness.cvd import DEFAULT_VERSIONS, write_release
from devtools.harness.nginx import Nginx
from devtools.harness.ports import free_port
from tests.publish.fakes import MirrorFactory
from tests.publish.fixtures import Syncd, by_name

EXPECT = [f"--expect={db}={v}" for db, v in DEFAULT_VERSIONS.items()]


def test_faults_each_get_their_outcome(fake_mirror: MirrorFactory, syncd: Syncd) -> None:
    ok = fake_mirror("ok.test", "ok")
    garbage = fake_mirror("garbage.test", "garbage")
    spew = fake_mirror("spew.test", "spew")
    hang = fake_mirror("hang.test", "hang")
    flaky = fake_mirror("flaky.test", "flaky")
    queued = fake_mirror("queued.test", "queued")
    rejected = fake_mirror("rejected.test", "rejected")
    syncd.write(
        "".join(m.inventory_block() for m in (ok, garbage, spew, hang, flaky, queued, rejected))
        + "[[mirrors]]\n"
        'name = "refused.test"\nhost = "127.0.0.1"\n'
        f"port = {free_port()}\n"
        'country = "DE"\n'
        f'host_keys = ["{ok.sshd.host_key_line}"]\n'
    )
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 1, err
    got = by_name(doc)
    outcomes = {name: m["outcome"] for name, m in got.items()}
    assert outcomes == {
        "ok.test": "ok",
        "garbage.test": "failed",
        "spew.test": "failed",
        "hang.test": "timeout",
        "flaky.test": "ok",
        "queued.test": "ok",
        "rejected.test": "failed",
        "refused.test": "unreachable",
    }, err
    assert got["ok.test"]["attempts"] == 1
    assert got["ok.test"]["report"]["databases"]["daily"]["version"] == DEFAULT_VERSIONS["daily"]
    # the request is exactly what the client contract accepts
    (request,) = ok.requests
    assert request == (
        f"sync run-id={doc['run_id']} expect-bytecode={DEFAULT_VERSIONS['bytecode']} "
        f"expect-daily={DEFAULT_VERSIONS['daily']} expect-main={DEFAULT_VERSIONS['main']} "
        "deadline=4"  # FAST_POLICY's command_timeout: the client stops by then on its own
    )
    # garbage: control characters never reach the error text
    assert "not json" in got["garbage.test"]["error"]
    assert "\x1b" not in got["garbage.test"]["error"]
    assert "more than" in got["spew.test"]["error"]
    assert got["flaky.test"]["attempts"] == 2
    assert queued.requests[0].startswith("sync ") and queued.requests[-1] == "status"
    assert got["rejected.test"]["attempts"] == 1  # never retried
    assert got["refused.test"]["attempts"] == 3  # transient: retried up to max_attempts
    # the summary groups problems with the next action
    assert "next:" in err and f"syncd publish --resume {doc['run_id']}" in err


def test_http_proof_catches_a_stale_mirror(
    tmp_path: Path,
    fake_mirror: MirrorFactory,
    nginx_factory: Callable[..., Nginx],
    syncd: Syncd,
) -> None:
    fresh_root, stale_root = tmp_path / "fresh", tmp_path / "stale"
    write_release(fresh_root, **DEFAULT_VERSIONS)
    write_release(stale_root, DEFAULT_VERSIONS["daily"] - 1)
    fresh_web, stale_web = nginx_factory(fresh_root), nginx_factory(stale_root)
    good = fake_mirror("good.test", "ok")
    stale = fake_mirror("stale.test", "ok")  # says ok, but its web server serves old files
    syncd.write(
        good.inventory_block(http=fresh_web.base_url)
        + stale.inventory_block(http=stale_web.base_url)
    )
    code, doc, err = syncd.publish(*EXPECT)
    assert code == 1, err
    got = by_name(doc)
    assert got["good.test"]["outcome"] == "ok"
    assert got["stale.test"]["outcome"] == "failed"
    assert got["stale.test"]["error"] == (
        f"http (IPv4): serves daily {DEFAULT_VERSIONS['daily'] - 1}, "
        f"release is {DEFAULT_VERSIONS['daily']}"
    )
    assert "Range" not in err  # one line per problem, no tracebacks


def test_timeouts_and_faults_leak_no_descriptors(fake_mirror: MirrorFactory, syncd: Syncd) -> None:
    mirrors = [fake_mirror(f"hang{i}.test", "hang") for i in range(4)]
    mirrors += [fake_mirror("spew.test", "spew"), fake_mirror("ok.test", "ok")]
    syncd.write(
        "".join(m.inventory_block() for m in mirrors),
        policy="[policy]\ncommand_timeout = 1\nhttp_check = false\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.publish.fdcheck", str(syncd.config), "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    outcomes = dict(doc["outcomes"][0])
    assert outcomes["ok.test"] == "ok" and outcomes["spew.test"] == "failed"
    assert {outcomes[f"hang{i}.test"] for i in range(4)} == {"timeout"}
    first, *rest = doc["after"]
    assert all(n <= first for n in rest), doc  # steady: nothing accumulates run after run
    assert first - doc["before"] <= 2, doc  # measured: 0 (every connection and the record closed)
