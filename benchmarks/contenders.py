"""The fan-out contenders other than syncd, each run as its own process by the driver.

    python -m benchmarks.contenders asyncio  --inventory I --key K --bound 100 --out OUT
    python -m benchmarks.contenders pssh     --inventory I --key K --bound 100 --out OUT
    python -m benchmarks.contenders ssh-loop --inventory I --key K --out OUT
    python -m benchmarks.contenders xargs    --inventory I --key K --bound 100 --out OUT

Each writes ``{"outcomes": {name: outcome}, "done_at": {name: unix time}}`` to OUT, with the
outcome vocabulary of ``syncd publish`` (ok, failed, unreachable, timeout, auth_failed,
host_key_mismatch) as far as each tool can tell them apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

COMMAND = "sync run-id={run_id} expect-daily=28034 expect-main=62 expect-bytecode=335"
RUN = {"command": COMMAND.format(run_id="bench")}  # set from --run-id in main()
CONNECT_TIMEOUT = float(os.environ.get("BENCH_CONNECT_TIMEOUT", "10"))
COMMAND_TIMEOUT = float(os.environ.get("BENCH_COMMAND_TIMEOUT", "30"))


def load(inventory: Path) -> list[dict[str, Any]]:
    return list(tomllib.loads(inventory.read_text())["mirrors"])


def judge_output(text: str, exit_code: int | None) -> str:
    """ok when the last line is a report saying ok (or queued), else failed."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    try:
        rep = json.loads(lines[-1]) if lines else None
    except ValueError:
        return "failed"
    if not isinstance(rep, dict):
        return "failed"
    return "ok" if exit_code == 0 and rep.get("status") in ("ok", "queued") else "failed"


def raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# (c) the floor: a minimal asyncssh fan-out on plain asyncio, options built once
async def _asyncio_fanout(
    mirrors: list[dict[str, Any]], key: Path, bound: int, out: dict[str, Any]
) -> None:
    import asyncssh

    client_key = asyncssh.read_private_key(key)
    sem = asyncio.Semaphore(bound)
    base = asyncssh.SSHClientConnectionOptions(
        client_keys=[client_key],
        agent_path=None,
        config=None,
        encryption_algs=["aes256-gcm@openssh.com"],
        connect_timeout=CONNECT_TIMEOUT,
        login_timeout=CONNECT_TIMEOUT,
    )

    async def one(m: dict[str, Any]) -> None:
        known = asyncssh.import_known_hosts(
            "".join(f"[{m['host']}]:{m['port']} {k}\n" for k in m["host_keys"])
        )
        outcome = "failed"
        try:
            async with sem:
                conn = await asyncio.wait_for(
                    asyncssh.connect(
                        m["host"], m["port"], username=m["user"], known_hosts=known, options=base
                    ),
                    CONNECT_TIMEOUT + 1,
                )
            async with conn:
                res = await asyncio.wait_for(conn.run(RUN["command"], check=False), COMMAND_TIMEOUT)
                outcome = judge_output(str(res.stdout), res.exit_status)
        except asyncssh.PermissionDenied:
            outcome = "auth_failed"
        except asyncssh.HostKeyNotVerifiable:
            outcome = "host_key_mismatch"
        except TimeoutError:
            outcome = "timeout"
        except (OSError, asyncssh.Error):
            outcome = "unreachable"
        out["outcomes"][m["name"]] = outcome
        out["done_at"][m["name"]] = time.time()

    await asyncio.gather(*(one(m) for m in mirrors))


# (d) parallel-ssh (libssh2 + gevent)
def _pssh(mirrors: list[dict[str, Any]], key: Path, bound: int, out: dict[str, Any]) -> None:
    from pssh.clients import ParallelSSHClient
    from pssh.config import HostConfig

    hosts = [m["host"] for m in mirrors]
    config = [HostConfig(port=m["port"], user=m["user"], private_key=str(key)) for m in mirrors]
    client = ParallelSSHClient(
        hosts,
        host_config=config,
        pool_size=bound,
        timeout=CONNECT_TIMEOUT,
        num_retries=1,
        retry_delay=0,
    )
    output = client.run_command(RUN["command"], stop_on_errors=False, read_timeout=COMMAND_TIMEOUT)
    with contextlib.suppress(Exception):
        client.join(output, timeout=COMMAND_TIMEOUT)
    by_host = {m["host"]: m for m in mirrors}
    for host_out in output:  # not in the order of `hosts` when some fail
        m = by_host[host_out.host]
        if host_out.exception is not None:
            name = type(host_out.exception).__name__
            outcome = (
                "auth_failed"
                if "Authentication" in name
                else "timeout"
                if "Timeout" in name
                else "unreachable"
            )
        else:
            try:
                text = "\n".join(host_out.stdout or [])  # read to EOF: sets the exit code
            except Exception:
                text = ""
            if host_out.exit_code is None:
                outcome = "timeout"
            else:
                outcome = judge_output(text, host_out.exit_code)
        out["outcomes"][m["name"]] = outcome
        out["done_at"][m["name"]] = time.time()


def _ssh_argv(m: dict[str, Any], key: Path, known: Path) -> list[str]:
    return [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(key),
        "-p",
        str(m["port"]),
        "-o",
        "BatchMode=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"ConnectTimeout={int(CONNECT_TIMEOUT)}",
        "-o",
        "KexAlgorithms=curve25519-sha256",
        f"{m['user']}@{m['host']}",
        RUN["command"],
    ]


def _ssh_outcome(stdout: str, stderr: str, code: int | None) -> str:
    if code == 255:
        if "Permission denied" in stderr:
            return "auth_failed"
        if "REMOTE HOST IDENTIFICATION" in stderr or "Host key verification" in stderr:
            return "host_key_mismatch"
        return "timeout" if "timed out" in stderr else "unreachable"
    if code is None:
        return "timeout"
    return judge_output(stdout, code)


def _known_hosts(mirrors: list[dict[str, Any]], directory: Path) -> Path:
    path = directory / "known_hosts"
    path.write_text(
        "".join(f"[{m['host']}]:{m['port']} {k}\n" for m in mirrors for k in m["host_keys"])
    )
    return path


# (a) the old way: one ssh after another
def _ssh_loop(mirrors: list[dict[str, Any]], key: Path, out: dict[str, Any], tmp: Path) -> None:
    known = _known_hosts(mirrors, tmp)
    for m in mirrors:
        try:
            res = subprocess.run(
                _ssh_argv(m, key, known),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT + CONNECT_TIMEOUT,
                stdin=subprocess.DEVNULL,
            )
            outcome = _ssh_outcome(res.stdout, res.stderr, res.returncode)
        except subprocess.TimeoutExpired:
            outcome = "timeout"
        out["outcomes"][m["name"]] = outcome
        out["done_at"][m["name"]] = time.time()


# (b) OpenSSH in parallel through xargs -P, each call wrapped so one failure does not stop xargs
def _xargs(
    mirrors: list[dict[str, Any]], key: Path, bound: int, out: dict[str, Any], tmp: Path
) -> None:
    known = _known_hosts(mirrors, tmp)
    script = tmp / "one.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'name="$1"; shift\n'
        f'timeout {int(COMMAND_TIMEOUT + CONNECT_TIMEOUT)} "$@" >"{tmp}/$name.out" '
        f'2>"{tmp}/$name.err"; echo $? >"{tmp}/$name.rc"; date +%s.%N >"{tmp}/$name.t"\n'
        "exit 0\n"
    )
    script.chmod(0o755)
    with (tmp / "jobs").open("w") as jobs:  # one line per mirror: its name, then ssh's argv
        for m in mirrors:
            jobs.write(" ".join(_quote(a) for a in [m["name"], *_ssh_argv(m, key, known)]) + "\n")
    with (tmp / "jobs").open() as jobs_in:
        subprocess.run(
            ["xargs", "-P", str(bound), "-L", "1", str(script)], stdin=jobs_in, check=False
        )
    for m in mirrors:
        n = m["name"]
        code = int((tmp / f"{n}.rc").read_text()) if (tmp / f"{n}.rc").exists() else None
        outcome = (
            "timeout"
            if code == 124
            else _ssh_outcome((tmp / f"{n}.out").read_text(), (tmp / f"{n}.err").read_text(), code)
        )
        out["outcomes"][n] = outcome
        out["done_at"][n] = float((tmp / f"{n}.t").read_text())


def _quote(arg: str) -> str:
    """Quote for xargs' own (non-shell) parser: double quotes, no embedded quotes expected."""
    if '"' in arg or "\n" in arg:
        raise ValueError(f"cannot pass {arg!r} through xargs")
    return f'"{arg}"'


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.contenders")
    ap.add_argument("tool", choices=["asyncio", "pssh", "ssh-loop", "xargs"])
    ap.add_argument("--inventory", type=Path, required=True)
    ap.add_argument("--key", type=Path, required=True)
    ap.add_argument("--bound", type=int, default=100)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run-id", default="bench")
    args = ap.parse_args()
    RUN["command"] = COMMAND.format(run_id=args.run_id)
    raise_nofile()
    mirrors = load(args.inventory)
    out: dict[str, Any] = {"outcomes": {}, "done_at": {}}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if args.tool == "asyncio":
            asyncio.run(_asyncio_fanout(mirrors, args.key, args.bound, out))
        elif args.tool == "pssh":
            _pssh(mirrors, args.key, args.bound, out)
        elif args.tool == "ssh-loop":
            _ssh_loop(mirrors, args.key, out, Path(tmp))
        else:
            _xargs(mirrors, args.key, args.bound, out, Path(tmp))
    args.out.write_text(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # parallel-ssh leaves gevent greenlets behind: do not wait for them


if __name__ == "__main__":
    main()
