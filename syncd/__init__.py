"""syncd: the publisher's orchestrator of pushsync.

A map of the house. One package per feature, each with its pure part (decisions over plain
data, time passed in) beside its I/O part, and one thin command line on top:

    cli/          parse -> a feature's entry -> print; one module per command group
    publish/      a release pushed to every mirror over ssh: plan, sources and tiers, the
                  attempt judged, the record, the proof, the summary; the heartbeat
    monitor/      every mirror checked over HTTP, judged fresh .. removed, recorded, mailed
    statuspage/   the status site, status.json and the metrics, from one monitor snapshot
    dns/          the rotation pools and the TXT record, updated in steps that keep DNS's promise
    inventory/    the mirrors: the model, registration and going live, text edits
    keys/         the pusher keys and their signed authorized_keys files
    httpcheck/    what a mirror serves over HTTP, asked as freshclam would (bounded)
    release/      what a release is (the files a mirror must serve whole), how it reached the
                  mirrors in figures, and its announcement to the list
    traffic/      what each mirror reports serving (its access log), recorded per report,
                  clamped; the /local_stats/ verdict

Shared: `errors` (`SyncdError` and the exit codes), `settings` (syncd.toml; each feature's
table is its own model), `files` (syncd's files, read and written atomically), `sqlite` (the
one record file), `text` (the one cleaning of text from outside), `hints` ("did you mean").

Across features: a feature's store (its part of the record, read-write) is its own; the
others read that record through its read-only query module (publish.query, monitor.query,
dns.query; a release's: release.record) and call its entry, never its store (the import
contracts in pyproject.toml hold it).

How a release flows: ``syncd publish`` (cli.publish) reads the settings, the inventory and the
source tree once, and runs publish.job: publish.fanout pushes each mirror over publish.ssh,
judges each answer (publish.classify), records it (publish.store), proves it over HTTP
(httpcheck), and sums up (publish.summary); then dns.update runs the gate and the DNS steps.
Between releases, ``syncd monitor`` (monitor.run) checks every mirror, records what changed,
mails the admins, reads its record once into a snapshot, takes stale mirrors out of rotation
(dns.update, handed the gate's evidence judged from that snapshot), and writes the status page
(statuspage).
"""

__version__ = "0.1.0"
