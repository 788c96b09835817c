"""The monitor: every mirror checked as freshclam sees it, judged, recorded and announced.

Pure: `freshness` (the states and their rules), `announce` (the mails), `outage` (the guard
against the monitor's own outage), `config` (``[monitor]``). I/O: `checks` (the HTTP checks of
one pass, under trio), `store` (the monitor's part of the record), `mail` (SMTP). Entry: `run`
(one pass: checks, judgements, mail, the rotation, the status page and the metrics)."""
