"""The command line ``clam-clientsync maintenance ...``. Pure, like ``args`` (whose parser it
uses): the times are read against ``now``, passed in."""

from typing import List, NamedTuple, Optional

from clientside.core.args import Parser, UsageError
from pushwire.maintenance import DAY, NoticeError, parse_time

MAINTENANCE_USAGE = (
    "usage: clam-clientsync maintenance --from WHEN --until WHEN --reason TEXT [--config PATH]\n"
    "       clam-clientsync maintenance --cancel | --show [--config PATH]\n"
    "\n"
    "Announce a maintenance window of this mirror: writes TO/local_maintenance (a local_*\n"
    "file: no sync deletes it), which the monitor reads over HTTP and every report carries.\n"
    "From shortly before --from until --until the mirror is out of the DNS rotation and its\n"
    "failures mail nobody; it is still pushed to. After --until it comes back once it serves\n"
    "the current release.\n"
    "\n"
    "  --from WHEN     when it starts: RFC 3339 UTC (2026-03-01T09:00:00Z), now, or +30m,\n"
    "                  +2h, +1d from now (default: now)\n"
    "  --until WHEN    when it ends, the same way (+2h: two hours after now)\n"
    "  --reason TEXT   why, in one line (at most 200 characters; shown on the status page)\n"
    "  --max-days N    the longest window accepted (default 7; the team's monitor ignores\n"
    "                  a notice longer than its own bound, a week unless told otherwise)\n"
    "  --cancel        remove the notice (the window is over early, or did not happen)\n"
    "  --show          print the notice in force, if any\n"
    "  --config PATH   the config whose TO serves the notice (default\n"
    "                  ~/etc/clam-clientsync.conf)\n"
    "\n"
    "Exit codes: 0 done, 64 usage, 78 configuration error, 1 the notice cannot be written."
)
MAX_DAYS_LIMIT = 366


class MaintenanceArgs(NamedTuple):
    action: str  # "set", "cancel", "show", "help"
    config: Optional[str]
    home: Optional[str]
    starts: Optional[float] = None
    ends: Optional[float] = None
    reason: str = ""
    max_s: float = 7 * DAY


def parse_maintenance_args(argv: List[str], now: float) -> MaintenanceArgs:
    """Given the arguments after ``maintenance`` and the time now (unix seconds), return
    them; raise UsageError naming the problem."""
    parser = Parser("clam-clientsync maintenance")
    for option in ("--from", "--until", "--reason", "--config", "--home", "--max-days"):
        parser.add_argument(option)
    for flag in ("--cancel", "--show"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    ns = vars(parser.parse_args(argv))
    config, home = ns["config"], ns["home"]
    if ns["help"]:
        return MaintenanceArgs("help", config, home)
    window = [o for o in ("from", "until", "reason", "max_days") if ns[o] is not None]
    chosen = [a for a in ("cancel", "show") if ns[a]] + (["set"] if window else [])
    if len(chosen) != 1:
        raise UsageError(
            "give --from/--until/--reason, --cancel or --show (one of them): "
            "clam-clientsync maintenance --help"
        )
    if chosen[0] != "set":
        return MaintenanceArgs(chosen[0], config, home)
    if ns["until"] is None or ns["reason"] is None:
        raise UsageError("a window needs --until WHEN and --reason TEXT, e.g. --until +2h")
    max_days = ns["max_days"] or "7"
    if not (max_days.isascii() and max_days.isdigit()) or not 1 <= int(max_days) <= MAX_DAYS_LIMIT:
        raise UsageError(f"--max-days {max_days[:20]!r}: give a number of days, 1 to 366")
    try:
        starts = parse_time(ns["from"], now) if ns["from"] is not None else float(now)
        ends = parse_time(ns["until"], now)
    except NoticeError as exc:
        raise UsageError(str(exc)) from None
    return MaintenanceArgs("set", config, home, starts, ends, ns["reason"], float(max_days) * DAY)
