"""What the client makes of a CVD header (``pushwire.cvd``): whether a staged database may be
published, and which file names are databases. Pure."""

from typing import NamedTuple, Optional

from pushwire.cvd import CvdHeader

# a database under any of its names: ``.cvd`` (what freshclam fetches from a mirror), ``.cld``
# (what freshclam without DNS asks for first) and ``.cud`` (unsigned): each is verified as a CVD
VERIFIED_SUFFIXES = (".cvd", ".cld", ".cud")
SERVED_SUFFIX = ".cvd"
# every name that is verified before it is served: databases, cdiffs and sign files
CHECKED_SUFFIXES = (*VERIFIED_SUFFIXES, ".cdiff", ".sign")


class Verdict(NamedTuple):
    ok: bool
    kind: Optional[str]  # corrupt_cvd, downgrade, expectation_unmet, pin_mismatch
    message: str


def judge(
    name: str,
    *,
    header: Optional[CvdHeader],
    header_error: Optional[str],
    body_md5: Optional[str],
    served_version: Optional[int],
    expected_version: Optional[int],
    pinned_md5: Optional[str] = None,
) -> Verdict:
    """Given what was read of a staged CVD, return whether it may be published and why not.
    With `pinned_md5` (a hub's file, pinned by the push), only that very CVD may be."""
    if header is None:
        return Verdict(False, "corrupt_cvd", f"{name}: bad header: {header_error}")
    if body_md5 is None or body_md5.lower() != header.md5:
        return Verdict(False, "corrupt_cvd", f"{name}: MD5 of body does not match the header")
    if served_version is not None and header.version < served_version:
        return Verdict(
            False,
            "downgrade",
            f"{name}: version {header.version} is older than served {served_version}",
        )
    if expected_version is not None and header.version < expected_version:
        return Verdict(
            False,
            "expectation_unmet",
            f"{name}: version {header.version} is older than expected {expected_version}",
        )
    if pinned_md5 is not None and header.md5 != pinned_md5:
        return Verdict(
            False,
            "pin_mismatch",
            f"{name}: md5 {header.md5} is not the release's {pinned_md5} (pinned by the push)",
        )
    return Verdict(True, None, f"{name}: version {header.version} verified")


def database_name(filename: str) -> Optional[str]:
    """Given a file name, return the database name of a ``*.cvd``/``*.cld``/``*.cud``, else
    None."""
    for suffix in VERIFIED_SUFFIXES:
        if filename.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)]
    return None


def is_checked_name(filename: str) -> bool:
    """Return whether ``filename`` is a name that must be a verified regular file to be served
    (``*.cvd *.cld *.cud *.cdiff *.sign``)."""
    return filename.endswith(CHECKED_SUFFIXES)
