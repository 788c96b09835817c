"""Synthetic ClamAV CVD files: a correct 512-byte header over a real tar.gz body.

Header: ``ClamAV-VDB:<build time>:<version>:<signatures>:<flevel>:<md5 of body>:<dsig>:
<builder>:<unix time>``, ASCII, padded with spaces to 512 bytes. The body is a gzip'd tar
holding ``COPYING`` first, then ``<name>.info`` and a signature file, as in ClamAV's own databases.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
import tarfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

HEADER_SIZE = 512
# Not a real signature (nothing here can sign like ClamAV): a well-formed placeholder.
FAKE_DSIG = "pushsyncTESTdsig" + "A" * 70

DEFAULT_VERSIONS = {"daily": 28033, "main": 62, "bytecode": 335}
# What the real databases weigh (a release's tree as mirrors serve it): `scale` in write_release
# is the fraction of these the synthetic files are built at (1.0: the real sizes; CI: tiny).
REAL_SIZES = {"daily": 60_000_000, "main": 160_000_000, "bytecode": 300_000, "cdiff": 100_000}
SMALL_SIZES = {"daily": 2048, "main": 2048, "bytecode": 2048, "cdiff": 512}


@cache
def release_time() -> datetime:
    """Return the build time of releases made without an explicit one: the real clock (so any
    date works, shifted clocks included), read once per process and cut to the minute as CVD
    headers keep it, so that the same release built twice is the same bytes."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_body(name: str, version: int, signatures: int, mtime: int, payload_size: int) -> bytes:
    """Return a deterministic tar.gz body for database `name`."""
    rng = random.Random(f"{name}:{version}")
    sigs = "\n".join(
        f"Test.Sig.{name}.{version}.{i}:0:*:{rng.getrandbits(64):016x}" for i in range(8)
    )
    payload = (sigs + "\n").encode() + rng.randbytes(payload_size)
    info_lines = [
        f"ClamAV-VDB:{version}:{signatures}",
        f"{name}.ndb:{len(payload)}:{hashlib.sha256(payload).hexdigest()}",
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _tar_member(tar, "COPYING", b"Synthetic test database, GPL-2.0 terms apply.\n", mtime)
        _tar_member(tar, f"{name}.info", ("\n".join(info_lines) + "\n").encode(), mtime)
        _tar_member(tar, f"{name}.ndb", payload, mtime)
    return gzip.compress(raw.getvalue(), mtime=mtime)


def build_header(
    version: int,
    signatures: int,
    functionality: int,
    md5: str,
    build_time: datetime,
    builder: str = "pushsync",
    with_unix_time: bool = True,
) -> bytes:
    """Return the 512-byte CVD header."""
    stamp = build_time.strftime("%d %b %Y %H-%M %z")
    fields = [
        "ClamAV-VDB",
        stamp,
        str(version),
        str(signatures),
        str(functionality),
        md5,
        FAKE_DSIG,
        builder,
    ]
    if with_unix_time:
        fields.append(str(int(build_time.timestamp())))
    text = ":".join(fields).encode("ascii")
    if len(text) > HEADER_SIZE:
        raise ValueError("CVD header longer than 512 bytes")
    return text.ljust(HEADER_SIZE, b" ")


def build_cvd(
    name: str,
    version: int,
    *,
    signatures: int = 1000,
    functionality: int = 90,
    build_time: datetime | None = None,
    builder: str = "pushsync",
    with_unix_time: bool = True,
    payload_size: int = 2048,
) -> bytes:
    """Return the bytes of a valid CVD for database `name` at `version`."""
    when = build_time or release_time()
    body = build_body(name, version, signatures, int(when.timestamp()), payload_size)
    header = build_header(
        version,
        signatures,
        functionality,
        hashlib.md5(body).hexdigest(),
        when,
        builder,
        with_unix_time,
    )
    return header + body


def write_cvd(directory: Path, name: str, version: int, **kw: object) -> Path:
    """Write ``<directory>/<name>.cvd`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.cvd"
    path.write_bytes(build_cvd(name, version, **kw))  # type: ignore[arg-type]
    return path


def write_timestamp(directory: Path, when: datetime | float) -> Path:
    """Write ``<directory>/timestamp`` (unix seconds, as the source uploads it) for `when`."""
    stamp = when.timestamp() if isinstance(when, datetime) else when
    path = directory / "timestamp"
    path.write_text(f"{int(stamp)}\n")
    return path


def write_release(
    directory: Path,
    daily: int,
    main: int = 62,
    bytecode: int = 335,
    *,
    build_time: datetime | None = None,
    timestamp: datetime | float | None = None,
    **kw: object,
) -> dict[str, Path]:
    """Write daily, main and bytecode CVDs built at `build_time` (default `release_time()`) and
    a ``timestamp`` file for `timestamp` (default: the build time); return name -> path."""
    when = build_time or release_time()
    paths = {
        name: write_cvd(directory, name, version, build_time=when, **kw)
        for name, version in (("daily", daily), ("main", main), ("bytecode", bytecode))
    }
    write_timestamp(directory, when if timestamp is None else timestamp)
    return paths


def build_cdiff(version: int, *, payload_size: int = SMALL_SIZES["cdiff"]) -> bytes:
    """Return a ``daily-<version>.cdiff`` as sigtool makes one: a gzip'd update script, then
    ``:`` and the digital signature (a placeholder here: only ClamAV's key can sign)."""
    rng = random.Random(f"cdiff:{version}")
    lines = [
        "OPEN daily.ndb",
        *(f"ADD Test.Sig.daily.{version}.{i}:0:*:{rng.getrandbits(64):016x}" for i in range(8)),
        "CLOSE",
        f"# {rng.randbytes(payload_size // 2).hex()}",
    ]
    script = ("\n".join(lines) + "\n").encode()
    return gzip.compress(script, mtime=0) + b":" + FAKE_DSIG.encode()


def build_sign(target: str) -> bytes:
    """Return a detached signature file for `target` (``daily-28034.cvd``, ...): a placeholder
    in the shape of one, since only ClamAV's key can make a real one."""
    digest = hashlib.sha256(target.encode()).hexdigest()
    return f"#pushsync-test-sign:{target}\n{digest}\n".encode()


def write_release_tree(
    directory: Path,
    daily: int,
    main: int = 62,
    bytecode: int = 335,
    *,
    cdiffs: int = 30,
    signs: bool = True,
    scale: float | None = None,
    build_time: datetime | None = None,
    timestamp: datetime | float | None = None,
) -> list[str]:
    """Write a release's whole tree as mirrors serve it: the three CVDs, ``daily-N.cdiff`` for
    the last `cdiffs` versions up to `daily`, with `signs` a ``.sign`` beside every CVD and
    cdiff (ClamAV 1.5), and ``timestamp``. Sizes are `scale` times the real ones (None: tiny).
    Return the names written, sorted."""

    def size(kind: str) -> int:
        return SMALL_SIZES[kind] if scale is None else max(512, int(REAL_SIZES[kind] * scale))

    when = build_time or release_time()
    versions = {"daily": daily, "main": main, "bytecode": bytecode}
    for db, version in versions.items():
        write_cvd(directory, db, version, build_time=when, payload_size=size(db))
        if signs:
            (directory / f"{db}-{version}.cvd.sign").write_bytes(build_sign(f"{db}-{version}.cvd"))
    for version in range(max(1, daily - cdiffs + 1), daily + 1) if cdiffs else ():
        name = f"daily-{version}.cdiff"
        (directory / name).write_bytes(build_cdiff(version, payload_size=size("cdiff")))
        if signs:
            (directory / f"{name}.sign").write_bytes(build_sign(name))
    write_timestamp(directory, when if timestamp is None else timestamp)
    return sorted(p.name for p in directory.iterdir())


def corrupt_body(path: Path) -> None:
    """Flip one byte of the body of the CVD at `path`: its MD5 no longer matches the header."""
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + len(data[HEADER_SIZE:]) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def read_header(path: Path) -> dict[str, str]:
    """Parse the header fields of `path` (for test assertions)."""
    fields = path.read_bytes()[:HEADER_SIZE].decode("ascii").rstrip(" ").split(":")
    names = [
        "magic",
        "build_time",
        "version",
        "signatures",
        "functionality",
        "md5",
        "dsig",
        "builder",
        "unix_time",
    ]
    return dict(zip(names, fields, strict=False))
