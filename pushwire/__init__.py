"""The wire between syncd and clam-clientsync: every format one of them writes and the other reads.

Pure (no I/O, no clock), standard library only, Python 3.9+: imported by syncd, vendored into
the mirror client's zipapp. One module per format, each with its parser and its renderer:

- ``cvd``: the 512-byte header of a ClamAV database file.
- ``request``: the request line syncd sends as ``SSH_ORIGINAL_COMMAND``.
- ``report``: the client's JSON report, its exit codes and error kinds.
- ``authorized_keys``: authorized_keys lines, as OpenSSH's sshd reads them.
- ``keyfile``: the signed pusher key file: file names, signature namespace, forced command.
"""
