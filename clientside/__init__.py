"""clam-clientsync: the mirror-side forced command of pushsync.

Runs on mirror hosts: the standard library and ``pushwire`` (the wire formats it shares with
syncd) only, Python 3.9 compatible. Layout: ``core/`` decides (pure), the modules beside it
do the I/O, ``verbs/`` holds what the client does; ``cli`` is the entry point.
"""

__version__ = "0.1.0"
