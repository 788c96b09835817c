"""Command line entry point of clam-clientsync (``clam-clientsync = clientside.cli:main``).

``clam-clientsync [--config PATH] SOURCE`` answers a push (``push``); ``--doctor`` (or
``doctor``) checks the mirror account; ``clam-clientsync setup ...`` prepares it. Exit codes:
0 ok or queued, 64 usage or rejected request, 75 temporary failure, 78 config error, 1 other.
"""

import logging
import os
import sys
from datetime import datetime, timezone
from typing import List, Optional

from clientside import __version__, logsetup, push
from clientside.core.args import HELP, UsageError, parse_args
from clientside.paths import config_path, home_dir, program_paths


def main(argv: Optional[List[str]] = None) -> int:
    started = datetime.now(timezone.utc)
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["setup"]:
        from clientside.verbs.setup import run_setup

        return run_setup(args_list[1:], home_dir())
    logger = logsetup.setup([])
    try:
        return _main(args_list, logger, started)
    finally:
        logsetup.close(logger)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _main(argv: List[str], logger: logging.Logger, started: datetime) -> int:
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    try:
        args = parse_args(argv)
    except UsageError as exc:
        return push.reject_usage(str(exc), logger, _now, started)
    if args.help:
        print(HELP)
        return 0
    if args.version and command is None:
        print(__version__)
        return 0
    home = os.path.abspath(args.home) if args.home else home_dir()
    path = config_path(args.config, home)
    if args.doctor:
        from clientside.verbs.doctor import doctor

        return doctor(path, home, args.source, program_paths())
    return push.serve(
        args,
        command=command,
        home=home,
        config_path=path,
        logger=logger,
        now=_now,
        started=started,
    )
