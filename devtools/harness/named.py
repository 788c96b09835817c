"""BIND 9 ``named`` on loopback ports, in the three roles a DNS deployment has:

- `Named`, the primary: one zone that accepts TSIG-signed updates (or the views a named.conf
  fragment declares: db.local by region, with a GeoIP2 directory); it can NOTIFY secondaries
  and allow them zone transfers, and listen on extra addresses (a network namespace's veth);
- `NamedSecondary`: ``type secondary`` for one zone, transferring from a primary (AXFR, then
  IXFR on NOTIFY), that a test can hold behind the primary (`hold`: it answers the old
  serial; `pause`: SIGSTOP, it answers nothing);
- `NamedCache`: a forward-only caching resolver in front of either, that keeps each answer
  for its TTL (``min-cache-ttl 0``, no prefetch, no stale answers), as the resolvers
  freshclam users sit behind do.

Every server has a control channel (``rndc`` with its own key on a free loopback port):
`rndc()`, and on the primary `freeze()`/`thaw()`. `serial()` and `query()` read what a server
holds with dnspython, `dig()` with the real ``dig``.

Measured on BIND 9.18 (tests/harness_tests/test_named_roles.py): a secondary serves the
primary's new serial 1-20 ms after the update's answer (``notify-delay 0``), and an update to a
frozen zone is answered REFUSED (the log: "dynamic update temporarily disabled because the zone
is frozen"); the cache drops an answer when the TTL it counts down in whole seconds reaches 0,
which is up to 1 s before TTL seconds have passed since it fetched it, never after."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring

from devtools.harness.binaries import require
from devtools.harness.clockshift import env_real_clock, env_without_libfaketime
from devtools.harness.ports import free_port, stop_process, wait_listening

ZONE_TEMPLATE = """$ORIGIN {zone}.
$TTL {ttl}
@   IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 {negative_ttl}
@   IN NS  ns1.{zone}.
ns1 IN A   127.0.0.1
"""


@dataclass(frozen=True)
class TsigKey:
    name: str
    secret: str = field(repr=False)
    algorithm: str = "hmac-sha256"

    @staticmethod
    def generate(name: str, algorithm: str = "hmac-sha256") -> TsigKey:
        return TsigKey(name, base64.b64encode(secrets.token_bytes(32)).decode(), algorithm)

    def statement(self) -> str:
        """The named.conf (and rndc.conf) ``key`` statement."""
        return f'key "{self.name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};'

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({self.name: (self.algorithm, self.secret)})


@dataclass(frozen=True)
class Answer:
    """What one query got: the rcode's text, the answer RRset's TTL (None without one) and
    its rdata texts, sorted."""

    rcode: str
    ttl: int | None
    texts: tuple[str, ...]


class RndcError(RuntimeError):
    pass


class _NamedProcess(ABC):
    """One ``named -g`` with its options, a control channel and the helpers every role has;
    each role (primary, secondary, cache) says its own options and zones."""

    role = "named"
    real_clock = False  # a secondary and a cache run on the real clock: see env_real_clock

    def __init__(
        self,
        workdir: Path,
        *,
        zone: str,
        host: str,
        port: int | None,
        listen_on: Sequence[str],
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.zone = zone
        self.host = host
        self.port = port or free_port()
        self.listen_on = [host, *(a for a in listen_on if a != host)]
        self.log_path = self.workdir / "named.log"
        self.conf_path = self.workdir / "named.conf"
        self.rndc_port = free_port()
        self.rndc_key = TsigKey.generate("rndc-control")
        self.rndc_conf = self.workdir / "rndc.conf"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @abstractmethod
    def _options(self) -> str:
        """The role's lines of the ``options`` block."""

    @abstractmethod
    def _body(self) -> str:
        """The role's keys and zone statements."""

    def _write(self) -> None:
        d = self.workdir
        self.conf_path.write_text(f"""
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {self.port} {{ {" ".join(f"{a};" for a in self.listen_on)} }};
    listen-on-v6 {{ none; }};
    dnssec-validation no;
{self._options()}
}};
{self.rndc_key.statement()}
controls {{
    inet 127.0.0.1 port {self.rndc_port} allow {{ 127.0.0.1; }} keys {{ "{self.rndc_key.name}"; }};
}};
{self._body()}
""")
        self.rndc_conf.write_text(
            f'{self.rndc_key.statement()}\noptions {{ default-key "{self.rndc_key.name}"; }};\n'
        )
        self.rndc_conf.chmod(0o600)

    def _ready(self, deadline: float) -> None:  # noqa: B027 - a hook most roles need not fill
        """Wait, after both ports listen, until the server is ready to serve (a role's hook:
        the secondary waits for its first transfer; the others are ready once they listen)."""

    def start(self) -> Self:
        self._write()
        # BIND's jemalloc and libfaketime do not mix: the primary takes the shifted clock
        # through the shim (TSIG proves it agrees with syncd's); see `real_clock`
        env = env_real_clock() if self.real_clock else env_without_libfaketime()
        check = subprocess.run(
            [require("named-checkconf"), str(self.conf_path)], capture_output=True, env=env
        )
        if check.returncode != 0:
            raise RuntimeError(f"named config rejected: {check.stdout.decode(errors='replace')}")
        argv = [require("named"), "-g", "-c", str(self.conf_path), "-n", "1"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + 20
        wait_listening(self.host, self.port, self._proc, self.log_path, timeout=20)
        wait_listening("127.0.0.1", self.rndc_port, self._proc, self.log_path, timeout=20)
        self._ready(deadline)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self.resume()  # a stopped process would not see SIGTERM
            stop_process(self._proc)
            self._proc = None

    def pause(self) -> None:
        """SIGSTOP the server: it answers nothing (queries, NOTIFY, transfers wait in the
        kernel's queues) until `resume`."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def rndc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real ``rndc`` against this server's control channel (the key is in a file,
        never in argv); raise `RndcError` with its output if it fails and `check`."""
        out = subprocess.run(
            [
                require("rndc"),
                "-c",
                str(self.rndc_conf),
                "-s",
                "127.0.0.1",
                "-p",
                str(self.rndc_port),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            # on the server's clock: rndc's own authentication compares the two
            env=env_real_clock() if self.real_clock else env_without_libfaketime(),
            check=False,
        )
        if check and out.returncode != 0:
            raise RndcError(f"rndc {' '.join(args)} failed: {(out.stderr + out.stdout).strip()}")
        return out

    def query(
        self,
        name: str,
        rdtype: str,
        *,
        key: TsigKey | None = None,
        source: str | None = None,
        tcp: bool = True,
        timeout: float = 5.0,
    ) -> Answer:
        """Ask this server for `name` ("@" or a name relative to the zone) with dnspython,
        signed with `key` if given (a key selects a view), from the address `source` if given."""
        qname = dns.name.from_text(name, origin=dns.name.from_text(self.zone))
        q = dns.message.make_query(qname, rdtype)
        if key is not None:
            q.use_tsig(key.keyring(), keyname=dns.name.from_text(key.name), algorithm=key.algorithm)
        send = dns.query.tcp if tcp else dns.query.udp
        r = send(q, self.host, port=self.port, timeout=timeout, source=source)
        wanted = dns.rdatatype.from_text(rdtype)
        for rrset in r.answer:
            if rrset.rdtype == wanted:
                return Answer(
                    dns.rcode.to_text(r.rcode()),
                    rrset.ttl,
                    tuple(sorted(rd.to_text() for rd in rrset)),
                )
        return Answer(dns.rcode.to_text(r.rcode()), None, ())

    def serial(self, zone: str | None = None, *, key: TsigKey | None = None) -> int | None:
        """The SOA serial this server serves for `zone` (default: its zone), None when it
        serves none (no zone yet, REFUSED, no answer)."""
        q = dns.message.make_query(dns.name.from_text(zone or self.zone), "SOA")
        if key is not None:
            q.use_tsig(key.keyring(), keyname=dns.name.from_text(key.name), algorithm=key.algorithm)
        try:
            r = dns.query.tcp(q, self.host, port=self.port, timeout=2.0)
        except (OSError, dns.exception.DNSException):
            return None
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None

    def dig(self, name: str, rdtype: str, *, source: str | None = None) -> list[str]:
        """Ask this server (over TCP, with the real ``dig``) for `name` relative to the zone,
        from the loopback address `source` if given (all of 127/8 is on lo); return the
        answers' rdata texts, sorted."""
        out = subprocess.run(
            [
                require("dig"),
                f"@{self.host}",
                "-p",
                str(self.port),
                "+short",
                "+tcp",
                *(["-b", source] if source else []),
                *(
                    f"{name}.{self.zone}",
                    rdtype,
                ),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=env_without_libfaketime(),  # dig is BIND's too (jemalloc)
            check=False,
        )
        return sorted(out.stdout.split())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class Named(_NamedProcess):
    """The primary. `also_notify`: (host, port) of secondaries to NOTIFY at once after every
    change (``notify explicit; notify-delay 0``); without it, no NOTIFY is sent.
    `allow_transfer`: the address-match-list elements allowed to AXFR/IXFR, as named.conf
    text (``["127.0.0.1"]``, ``['key "pushsync-update"']``); default: the update key only.
    `listen_on`: more addresses to answer on besides `host` (e.g. `NetNs.root_address`).
    `default_ttl`/`negative_ttl`: the zone file's $TTL and SOA minimum."""

    role = "primary"

    def __init__(
        self,
        workdir: Path,
        *,
        zone: str = "clamav.net",
        key_name: str = "pushsync-update",
        algorithm: str = "hmac-sha256",
        host: str = "127.0.0.1",
        port: int | None = None,
        views_conf: Path | None = None,
        geoip_directory: Path | None = None,
        listen_on: Sequence[str] = (),
        also_notify: Sequence[tuple[str, int]] = (),
        allow_transfer: Sequence[str] | None = None,
        default_ttl: int = 300,
        negative_ttl: int = 60,
    ) -> None:
        """`views_conf`: a named.conf fragment (``syncd dns render --named-conf``) that declares
        the zone in views, included instead of the single zone statement; the main zone's file
        is still written here, as ``<zone>.zone``. `geoip_directory`: where BIND opens its
        GeoIP2 databases."""
        super().__init__(workdir, zone=zone, host=host, port=port, listen_on=listen_on)
        self.key_name, self.algorithm = key_name, algorithm
        self.secret = base64.b64encode(secrets.token_bytes(32)).decode()
        self.views_conf, self.geoip_directory = views_conf, geoip_directory
        self.also_notify = list(also_notify)
        self.allow_transfer = (
            list(allow_transfer) if allow_transfer is not None else [f'key "{key_name}"']
        )
        self.default_ttl, self.negative_ttl = default_ttl, negative_ttl

    @property
    def key(self) -> TsigKey:
        """The update key (TSIG), also the default key for zone transfers."""
        return TsigKey(self.key_name, self.secret, self.algorithm)

    def _options(self) -> str:
        geoip = f'geoip-directory "{self.geoip_directory}";' if self.geoip_directory else ""
        if self.also_notify:
            targets = " ".join(f"{h} port {p};" for h, p in self.also_notify)
            # at once, not 5 s (notify-delay) or 20 a second (notify-rate) apart
            notify = (
                "notify explicit;\n    notify-delay 0;\n    notify-rate 1000;\n"
                f"    also-notify {{ {targets} }};"
            )
        else:
            notify = "notify no;"
        transfer = " ".join(f"{e};" for e in self.allow_transfer) or "none;"
        return f"""    recursion no;
    {notify}
    allow-transfer {{ {transfer} }};
    {geoip}"""

    def _body(self) -> str:
        zone_file = self.workdir / f"{self.zone}.zone"
        zone_file.write_text(
            ZONE_TEMPLATE.format(
                zone=self.zone, ttl=self.default_ttl, negative_ttl=self.negative_ttl
            )
        )
        zones = (
            f'include "{self.views_conf}";'
            if self.views_conf
            else f"""zone "{self.zone}" {{
    type primary;
    file "{zone_file}";
    allow-update {{ key "{self.key_name}"; }};
}};"""
        )
        return f"{self.key.statement()}\n{zones}"

    def _zone_args(self, zone: str | None, view: str | None) -> list[str]:
        return [zone or self.zone, *(["IN", view] if view else [])]

    def freeze(self, zone: str | None = None, view: str | None = None) -> None:
        """``rndc freeze ZONE [IN VIEW]``: the zone (the view's zone) refuses updates until
        `thaw` (BIND answers REFUSED)."""
        self.rndc("freeze", *self._zone_args(zone, view))

    def thaw(self, zone: str | None = None, view: str | None = None) -> None:
        """``rndc thaw ZONE [IN VIEW]``: reload the zone from its file and accept updates again."""
        self.rndc("thaw", *self._zone_args(zone, view))


class NamedSecondary(_NamedProcess):
    """``type secondary`` for `zone`, transferring from `primary` (host, port), the transfers
    signed with `key` (default: none; pass the primary's `Named.key`, which its default
    ``allow-transfer`` requires, or a view's key to follow that view). Give the primary
    ``also_notify=[secondary.address]`` (pick the port first: ``port=free_port()``) so that it
    follows within milliseconds; `start` returns once the first transfer is served."""

    role = "secondary"
    real_clock = True

    def __init__(
        self,
        workdir: Path,
        *,
        primary: tuple[str, int],
        zone: str = "clamav.net",
        key: TsigKey | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        listen_on: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, zone=zone, host=host, port=port, listen_on=listen_on)
        self.primary, self.key = primary, key
        self._held = False

    def _options(self) -> str:
        return """    recursion no;
    notify no;
    serial-query-rate 1000;  # the default 20 a second holds a refresh up to 0.5 s
    # asks the primary's serial every second as well as on NOTIFY: a shifted primary's NOTIFY
    # can be late (its timers' wall-clock deadlines, see clockshift.env_real_clock)
    min-refresh-time 1;
    max-refresh-time 1;
    min-retry-time 1;
    max-retry-time 1;
    allow-transfer { none; };"""

    def _body(self) -> str:
        host, port = self.primary
        if self._held:  # NOTIFY still comes from `host`, the refresh goes where nothing listens
            port = free_port(host)
        signed = f' key "{self.key.name}"' if self.key else ""
        return f"""{self.key.statement() if self.key else ""}
zone "{self.zone}" {{
    type secondary;
    file "{self.workdir / (self.zone + ".secondary.zone")}";
    masterfile-format text;
    primaries {{ {host} port {port}{signed}; }};
    allow-notify {{ {host}; }};
}};"""

    def hold(self) -> None:
        """Make it lag while it keeps answering: point its ``primaries`` at a port where
        nothing listens (``rndc reconfig``); it still takes the primary's NOTIFY, but every
        refresh fails, so it serves the serial it holds until `release`."""
        self._held = True
        self._write()
        self.rndc("reconfig")

    def release(self) -> None:
        """Undo `hold`: the real primary again, and ``rndc refresh`` so that it catches up now
        (not at the SOA retry interval)."""
        self._held = False
        self._write()
        self.rndc("reconfig")
        self.rndc("refresh", self.zone)

    def wait_serial(self, serial: int, timeout: float = 10.0) -> float:
        """Wait until it serves `serial` (or a later one); return the seconds waited."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            held = self.serial()
            if held is not None and held >= serial:
                return time.monotonic() - start
            time.sleep(0.002)
        raise TimeoutError(
            f"secondary still serves {self.serial()}, not {serial}, after {timeout} s"
        )

    def _ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.serial() is not None:
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"secondary got no transfer of {self.zone} within 20 s:\n{self.log_text()[-3000:]}"
        )


class NamedCache(_NamedProcess):
    """A caching resolver: ``recursion yes; forward only`` to `forwarders` (host, port), that
    keeps every answer for its TTL and not a second longer (``min-cache-ttl 0``,
    ``max-cache-ttl`` 1 day, ``prefetch 0``, no stale answers, ``servfail-ttl 0``); negative
    answers for the SOA minimum. `key`: sign every query to the forwarders' addresses with it
    (BIND's ``server { keys }``; a key selects a view); `query_source`: the address it asks
    from (the other way to select a view)."""

    role = "cache"
    real_clock = True

    def __init__(
        self,
        workdir: Path,
        *,
        forwarders: Sequence[tuple[str, int]],
        zone: str = "clamav.net",
        key: TsigKey | None = None,
        query_source: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        listen_on: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, zone=zone, host=host, port=port, listen_on=listen_on)
        if not forwarders:
            raise ValueError("a cache needs at least one forwarder")
        self.forwarders, self.key, self.query_source = list(forwarders), key, query_source

    def _options(self) -> str:
        fw = " ".join(f"{h} port {p};" for h, p in self.forwarders)
        source = f"query-source address {self.query_source};" if self.query_source else ""
        return f"""    recursion yes;
    allow-recursion {{ any; }};
    allow-query-cache {{ any; }};
    forward only;
    forwarders {{ {fw} }};
    min-cache-ttl 0;
    max-cache-ttl 86400;
    min-ncache-ttl 0;
    prefetch 0;
    stale-answer-enable no;
    stale-cache-enable no;
    servfail-ttl 0;
    notify no;
    {source}"""

    def _body(self) -> str:
        if self.key is None:
            return ""
        servers = "\n".join(
            f'server {h} {{ keys {{ "{self.key.name}"; }}; }};'
            for h in dict.fromkeys(h for h, _ in self.forwarders)
        )
        return f"{self.key.statement()}\n{servers}"

    def flush(self) -> None:
        """``rndc flush``: forget every cached answer."""
        self.rndc("flush")
