"""Asking a mirror over HTTP what it serves, as freshclam would: used by the publish's proof,
the monitor, and onboarding's checks.

Pure: `answer` (what an answer may be before a byte of its body is read), `conditional`
(what a check proved, and how the monitor's next pass asks again for little). I/O: `client`
(httpx under trio, every read bounded in bytes and time)."""
