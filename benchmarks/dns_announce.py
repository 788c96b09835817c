"""Release-to-announce: from the moment the gate opens to the new TXT record served by every
authoritative server, and what the pools' TTL costs of it.

Real parts: a BIND primary that takes the updates and a BIND secondary that follows it by
NOTIFY and zone transfer (devtools/harness/named.py). The record holds N mirrors in a few
countries that served the previous release; the new release reaches all but some of them,
so the gate's run must first take those out of their pools and wait out the TTL the removed
records had. The run is syncd's own (`syncd.dns.update.update`, real clock,
real sleeps). Per TTL it reports:

- ``announce_s``: gate judged -> the TXT served by the primary and the secondary (the second
  settle step ends);
- ``overhead_s``: ``announce_s`` minus the TTL waited (the steps' own cost: reads, updates,
  the serial checks);
- the same run with no mirror removed (nothing to wait out) as the same-run baseline.

    .venv/bin/python -m benchmarks.dns_announce --ttl 1 5 10 --reps 3 --n 60 \\
        --out benchmarks/results/dns-announce.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from devtools.harness.cvd import write_release
from devtools.harness.documents import lab_inventory, write_secret
from devtools.harness.named import Named, NamedSecondary
from devtools.harness.ports import free_port
from devtools.harness.record import record_served
from syncd.dns.update import update
from syncd.files import load_config, read_inventory, read_source_tree

COUNTRIES = ("PL", "DE", "NL", "FR", "CZ", "AT")
FIRST = 28100


def _serve(state: Path, names: list[str], daily: int) -> None:
    record_served(state, names, {"daily": daily, "main": 62, "bytecode": 335})


def one_run(work: Path, n: int, ttl: int, *, remove: int) -> dict[str, Any]:
    """One release on a fresh primary and secondary; return its figures."""
    secondary_port = free_port()
    with (
        Named(
            work / "primary",
            also_notify=[("127.0.0.1", secondary_port)],
            allow_transfer=['key "pushsync-update"', "127.0.0.1"],
            default_ttl=ttl,
        ) as named,
        NamedSecondary(work / "secondary", primary=named.address, port=secondary_port) as secondary,
    ):
        names = [f"m{i}" for i in range(n)]
        (work / "inventory.toml").write_text(
            lab_inventory(
                [
                    {
                        "name": m,
                        "host": f"127.0.{40 + i // 200}.{1 + i % 200}",
                        "country": COUNTRIES[i % len(COUNTRIES)],
                    }
                    for i, m in enumerate(names)
                ]
            )
        )
        secret = write_secret(work / "tsig.secret", named.secret)
        source, state = work / "source", work / "state.sqlite"
        (work / "syncd.toml").write_text(f"""
[dns]
server = "{named.host}"
port = {named.port}
key_name = "{named.key_name}"
key_secret_file = "{secret}"
gate_share = 0.5
pool_ttl = {ttl}
ttl = {ttl}
secondaries = ["127.0.0.1:{secondary_port}"]
""")
        cfg, _ = load_config(work / "syncd.toml")
        assert cfg.dns is not None

        def push(daily: int) -> Any:
            write_release(source, daily)
            return update(
                cfg,
                cfg.dns,  # type: ignore[arg-type]
                inventory=read_inventory(work / "inventory.toml"),
                state=state,
                source=read_source_tree(source),
                dry_run=False,
                now=time.time(),
            )

        _serve(state, names, FIRST)
        first = push(FIRST)
        assert first.error is None, first.error
        time.sleep(ttl)  # the first records' TTL passes: only this release's removals count
        _serve(state, names[remove:], FIRST + 1)
        started = time.time()
        result = push(FIRST + 1)
        assert result.error is None, result.error
        ended = max(r.at for r in result.steps)
        txt = secondary.query("current.cvd", "TXT").texts
        assert txt and f":{FIRST + 1}:" in txt[0], txt
        waited = ttl if remove else 0
        return {
            "announce_s": round(ended - started, 4),
            "overhead_s": round(ended - started - waited, 4),
            "changes": len(result.changes),
            "steps": [r.step.value for r in result.steps],
            "explained": result.announced,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ttl", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--n", type=int, default=60, help="mirrors in the record")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = []
    for ttl in args.ttl:
        for rep in range(args.reps):
            for label, remove in (("removal", max(1, args.n // 10)), ("baseline", 0)):
                with tempfile.TemporaryDirectory(prefix="dns-announce-") as tmp:
                    row = one_run(Path(tmp), args.n, ttl, remove=remove)
                row.update(ttl=ttl, rep=rep, run=label)
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = {}
    for ttl in args.ttl:
        for label in ("removal", "baseline"):
            mine = [r for r in rows if r["ttl"] == ttl and r["run"] == label]
            summary[f"ttl{ttl}-{label}"] = {
                "announce_s_median": statistics.median(r["announce_s"] for r in mine),
                "overhead_s_median": statistics.median(r["overhead_s"] for r in mine),
            }
    doc = {"n": args.n, "reps": args.reps, "rows": rows, "summary": summary}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
