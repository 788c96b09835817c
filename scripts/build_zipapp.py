"""Build ``clam-clientsync.pyz``: the mirror client as one file, with ``pushwire`` (the wire
formats it shares with syncd) and ``filelock`` (its sync lock, the copy installed here, which
must run on Python 3.9) inside; with ``--sign-key``, its OpenSSH signature beside it, the
release artifact mirrors download.

Usage: .venv/bin/python scripts/build_zipapp.py [OUTPUT] [--sign-key KEY]
       (default OUTPUT build/clam-clientsync.pyz; with --sign-key also OUTPUT.sig)

The archive runs on any Python 3.9+ (``python3 -I clam-clientsync.pyz --help``) and needs
nothing installed on the mirror. It is reproducible: members sorted by name, every member
dated ``SOURCE_DATE_EPOCH`` (https://reproducible-builds.org/specs/source-date-epoch/; a fixed
date when unset), fixed modes, so two builds of the same tree are
byte-identical. Members are stored, not deflated: every push reads them all, and inflating them
cost more than the ~110 KB it saves (benchmarks/CLIENT.md).

The signature is made as the key files' are (``ssh-keygen -Y sign``, namespace
``pushsync-keys``, by a signer of keys/pushers.toml), so the ``allowed_signers`` a mirror
already trusts verifies it; a signed key file passed off as the zipapp would not run, and the
zipapp passed off as a key file is refused by setup line by line. A mirror admin checks it with::

    ssh-keygen -Y verify -f allowed_signers -I db-team@clamav.net -n pushsync-keys \\
        -s clam-clientsync.pyz.sig < clam-clientsync.pyz
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAIN = b"import sys\nfrom clientside.cli import main\nsys.exit(main())\n"
DEFAULT_EPOCH = 1577836800  # 2020-01-01 00:00 UTC, when SOURCE_DATE_EPOCH is unset
ZIP_EPOCH_MIN = 315532800  # 1980-01-01: zip cannot date anything earlier


VENDORED = "filelock"  # a dependency the client imports, carried inside the archive
VENDORED_PYTHON = (3, 9)  # the oldest Python the archive runs on


def _vendored_dir(name: str) -> Path:
    """The installed package `name` (its directory), checked to run on ``VENDORED_PYTHON``;
    raise SystemExit with one line naming the problem and the fix."""
    import importlib.metadata
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"build_zipapp: {name} is not installed; run scripts/setup")
    needs = importlib.metadata.metadata(name).get("Requires-Python") or ""
    floor = re.search(r">=\s*3\.(\d+)", needs)
    if floor and (3, int(floor.group(1))) > VENDORED_PYTHON:
        want = ".".join(map(str, VENDORED_PYTHON))
        raise SystemExit(
            f"build_zipapp: the installed {name} needs Python {needs}, the archive runs on"
            f" {want}; install a {name} that supports {want} (pyproject.toml pins the range)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _vendored_license(name: str) -> list[tuple[str, Path]]:
    """The installed package's licence file, as ``NAME/LICENSE`` in the archive."""
    import importlib.metadata

    found = [
        f for f in importlib.metadata.files(name) or () if f.name.upper().startswith("LICENSE")
    ]
    return [(f"{name}/LICENSE", Path(str(found[0].locate())))] if found else []


def _package_files(package_dir: Path) -> list[tuple[str, Path]]:
    files = []
    for path in package_dir.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".typed"}:
            files.append((f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path))
    return files


def source_date(environ: Mapping[str, str] = os.environ) -> tuple[int, int, int, int, int, int]:
    """The members' date: ``SOURCE_DATE_EPOCH`` (unix seconds, UTC), else a fixed one; raise
    SystemExit with one line when it is not a number."""
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):
        raise SystemExit(f"build_zipapp: SOURCE_DATE_EPOCH={raw[:20]!r} is not unix seconds")
    epoch = max(int(raw) if raw else DEFAULT_EPOCH, ZIP_EPOCH_MIN)
    t = time.gmtime(epoch)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def build(output: Path) -> Path:
    """Write the zipapp to `output` and return it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    entries = sorted(
        [
            *_package_files(ROOT / "clientside"),
            *_package_files(ROOT / "pushwire"),
            *_package_files(_vendored_dir(VENDORED)),
            *_vendored_license(VENDORED),
        ]
    )
    date = source_date()
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, path in [("__main__.py", None), *entries]:
                info = zipfile.ZipInfo(name, date)
                info.compress_type = zipfile.ZIP_STORED
                info.create_system = 3  # unix, whatever builds it
                info.external_attr = 0o644 << 16
                zf.writestr(info, MAIN if path is None else path.read_bytes())
    tmp.chmod(0o755)
    tmp.replace(output)
    return output


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="build_zipapp.py",
        description=" ".join(__doc__.split("\n\n")[0].split()).replace("``", "'"),
    )
    parser.add_argument(
        "output",
        nargs="?",
        type=Path,
        default=ROOT / "build" / "clam-clientsync.pyz",
        help="where to write the zipapp (default: build/clam-clientsync.pyz)",
    )
    parser.add_argument("--sign-key", type=Path, help="sign with this private key (OUTPUT.sig)")
    args = parser.parse_args(argv)
    out = build(args.output)
    print(out)
    if args.sign_key is not None:
        from syncd.keys.sshsig import SignatureError, sign

        try:
            print(sign(out, args.sign_key))
        except SignatureError as err:
            print(f"build_zipapp: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
