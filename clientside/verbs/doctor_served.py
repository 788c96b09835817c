"""The doctor's checks of what the mirror serves beside the databases: its home page (what it
will show, and what in TO would stop or spoil it) and its access log (``ACCESS_LOG``)."""

import os
import pwd
import shlex
import socket

from clientside.core.config import Config
from clientside.core.homepage import LOGO_NAME
from clientside.core.pagekeys import PAGE_NAME
from clientside.verbs.findings import Doctor


def check_homepage(d: Doctor, config: Config) -> None:
    """What the home page will show (a note), and what in TO would stop or spoil it."""
    page = config.page
    sponsor = page.sponsor or "-"
    if page.sponsor_url:
        sponsor += f" (link {page.sponsor_url})"
    if page.contact is None:
        contact = "none (CONTACT=)"
    else:
        contact = page.contact if page.show_contact else "hidden (SHOW_CONTACT=yes shows it)"
    logo = os.path.join(config.to, LOGO_NAME)
    has_logo = os.path.isfile(logo)
    d.notes.append(
        f"home page {os.path.join(config.to, PAGE_NAME)}: name"
        f" {page.mirror_name or socket.gethostname() + ' (this host; MIRROR_NAME=)'},"
        f" country {page.country or '- (COUNTRY=)'}, sponsor {sponsor}, contact {contact},"
        f" logo {logo if has_logo else '- (add one as ' + logo + ')'}"
    )
    page_path = os.path.join(config.to, PAGE_NAME)
    d.check(
        not os.path.isdir(page_path) or os.path.islink(page_path),
        f"{page_path} is not a directory (each sync writes the home page there)",
        f"rm -r {shlex.quote(page_path)}",
    )
    if has_logo:
        d.check(
            bool(os.stat(logo).st_mode & 0o004),
            f"logo {logo} is readable by the web server",
            f"chmod 644 {shlex.quote(logo)}",
        )


def check_access_log(d: Doctor, config: Config) -> None:
    """ACCESS_LOG (when set) is a file this user can read, outside the served tree."""
    path = config.access_log
    if path is None:
        return
    real, to = os.path.realpath(path), os.path.realpath(config.to)
    d.check(
        not real.startswith(to.rstrip("/") + "/"),
        f"ACCESS_LOG {path} is outside TO",
        "log to a directory the web server does not serve (a sync deletes what is not local_*)",
    )
    readable = os.path.isfile(path) and os.access(path, os.R_OK)
    d.check(
        readable,
        f"ACCESS_LOG {path} is a file this user can read",
        f"point ACCESS_LOG= at the vhost's access log, and let {pwd.getpwuid(os.geteuid()).pw_name}"
        " read it (e.g. adm group, or logrotate's create 0640 with that group)",
    )
