"""Command line entry point of clam-clientsync."""

import sys
from typing import List, Optional

from clientside import __version__


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--help"], ["-h"]):
        print("usage: clam-clientsync [--config PATH] SOURCE")
        return 0
    if args == ["--version"]:
        print(__version__)
        return 0
    return 64
