"""Command line entry point of clam-clientsync (``clam-clientsync = clientside.cli:main``).

``clam-clientsync [--config PATH] SOURCE`` answers a push (``push``); ``--doctor`` (or
``doctor``) checks the mirror account; ``clam-clientsync setup ...`` prepares it;
``clam-clientsync maintenance ...`` announces a maintenance window. Exit codes:
0 ok or queued, 64 usage or rejected request, 75 temporary failure, 78 config error, 1 other.
"""

import logging
import os
import sys
from datetime import datetime, timezone
from typing import List, Optional

from clientside import __version__, logsetup, push
from clientside.configfile import config_path, home_dir, program_paths
from clientside.core.args import HELP, UsageError, parse_args


def main(argv: Optional[List[str]] = None) -> int:
    started = datetime.now(timezone.utc)
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["setup"]:
        from clientside.verbs.setup import run_setup

        return run_setup(args_list[1:], home_dir())
    if args_list[:1] == ["maintenance"]:
        from clientside.verbs.maintenance import run_maintenance

        return run_maintenance(args_list[1:])
    logger = logsetup.setup([])
    reply = push.Reply(started, _now)
    try:
        return _main(args_list, logger, reply)
    except Exception as exc:  # the boundary: whatever broke, the client still answers
        return reply.internal_error(exc, logger)
    finally:
        logsetup.close(logger)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _main(argv: List[str], logger: logging.Logger, reply: push.Reply) -> int:
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    try:
        args = parse_args(argv)
    except UsageError as exc:
        return push.reject_usage(str(exc), logger, reply)
    if args.help or (args.version and command is None):
        reply.owed = False  # a text answer
        print(HELP if args.help else __version__)
        return 0
    home = os.path.abspath(args.home) if args.home else home_dir()
    path = config_path(args.config, home)
    if args.doctor:
        from clientside.verbs.doctor import doctor

        reply.owed = False
        return doctor(path, home, args.source, program_paths())
    return push.serve(
        args, command=command, home=home, config_path=path, logger=logger, reply=reply
    )
