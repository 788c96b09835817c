"""The publish: one release pushed to every mirror over ssh, each attempt judged, recorded,
proven over HTTP and summed up; and the heartbeat between releases.

Pure: `plan` (who, in what order), `sources` (which source or hub), `request` and `report` (the
wire), `classify` and `verdicts` (what an attempt and a push's end mean), `outcome` (the
vocabulary), `summary` (the end), `stamp` (the heartbeat's timestamp), `errors` (failures
talking to a mirror), `config` (``[policy]`` and ``[[sources]]`` of syncd.toml). I/O: `ssh` and
`aioloop` (asyncssh, driven from trio), `store` and `recordwriter` (the record), `runlock`,
`retrying` (tenacity). Entries: `job` (one publish end to end: `fanout` pushes), `heartbeat`."""
