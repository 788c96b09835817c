"""scripts/build_zipapp.py --help: a description that ends with its sentence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_help_says_the_whole_first_paragraph() -> None:
    """`--help` ends its description with a whole sentence. (Proven to fail before the fix: it
    showed the docstring's first line only, "... with ``pushwire`` (the wire".)"""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_zipapp.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text = " ".join(proc.stdout.split())
    assert "(the wire formats it shares with syncd)" in text and "3.9) inside;" in text
    assert "the release artifact mirrors download." in text and "``" not in text
