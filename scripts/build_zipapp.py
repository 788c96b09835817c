"""Build ``clam-clientsync.pyz``: the mirror client as one file, with ``pushwire`` (the wire
formats it shares with syncd) and ``filelock`` inside.

Usage: .venv/bin/python scripts/build_zipapp.py [OUTPUT]   (default build/clam-clientsync.pyz)

The archive runs on any Python 3.9+ (``python3 -I clam-clientsync.pyz --help``) and needs
nothing installed on the mirror. Its contents are sorted and time-stamped from the source so
two builds of the same tree are byte-identical. Members are stored, not deflated: every push
reads them all, and inflating them cost more than the ~110 KB it saves (benchmarks/CLIENT.md).
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import filelock

ROOT = Path(__file__).resolve().parent.parent
MAIN = b"import sys\nfrom clientside.cli import main\nsys.exit(main())\n"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def _package_files(package_dir: Path) -> list[tuple[str, Path]]:
    files = []
    for path in sorted(package_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in {".py", ".typed"}:
            files.append((f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path))
    return files


def build(output: Path) -> Path:
    """Write the zipapp to `output` and return it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    entries = [
        *_package_files(ROOT / "clientside"),
        *_package_files(ROOT / "pushwire"),
        *_package_files(Path(filelock.__file__).parent),
    ]
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("wb") as raw:
        raw.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as zf:
            for name, path in [("__main__.py", None), *entries]:
                info = zipfile.ZipInfo(name, FIXED_TIME)
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                zf.writestr(info, MAIN if path is None else path.read_bytes())
    tmp.chmod(0o755)
    tmp.replace(output)
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "clam-clientsync.pyz"
    print(build(target))
