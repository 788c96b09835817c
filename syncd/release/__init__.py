"""A release: what it is, how it reached the mirrors, and its announcement to the list.

Pure: `manifest` (which files a mirror must serve whole), `tree` (the release as the source
tree holds it, read once by `syncd.files.read_source_tree`), `propagation` (from the record's
runs, attempts, checks and TXT changes: when each active mirror served a release, its
50/90/99/100 % times from the build and from the publish's start, per source and per hub, who
still misses it, when the TXT announced it), `announcement` (the plain-text mail to the list,
`now` passed in), `config` (``[announce]`` and ``[releases]`` of syncd.toml). I/O: `store` (the
headers each release was built with and the announcement's record), `record` (the record read
into `propagation`'s inputs), `history`, `mailer` (the announcement sent once, over the
monitor's SMTP settings).
"""
