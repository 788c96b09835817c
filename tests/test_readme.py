"""README.md's set-up paragraph names exactly the Debian packages scripts/setup installs.

Proven to fail before the fix: the README lacked lighttpd-mod-openssl, chromium-headless-shell,
fonts-dejavu-core, prometheus and systemd.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_packages() -> set[str]:
    text = (ROOT / "scripts" / "setup").read_text()
    found = re.search(r"^DEBIAN_PACKAGES=\(([^)]*)\)", text, re.MULTILINE)
    assert found, "scripts/setup: no DEBIAN_PACKAGES=(...)"
    return set(found.group(1).split())


def _readme_packages() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("```", 1)[0]
    found = re.search(r"the Debian packages \(([^)]*)\)", section.replace("\n", " "))
    assert found, "README.md: no 'the Debian packages (...)' in ## Set up"
    return set(re.findall(r"`([^`]+)`", found.group(1)))


def test_the_readme_names_every_package_setup_installs() -> None:
    assert _readme_packages() == _setup_packages()


def test_the_readme_says_which_registries_setup_needs() -> None:
    section = (ROOT / "README.md").read_text().split("## Set up", 1)[1].split("```", 1)[0]
    assert "deb.debian.org" in section and "pypi.org" in section
