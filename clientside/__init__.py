"""clam-clientsync: the mirror-side forced command of pushsync.

Runs on mirror hosts: standard library and ``filelock`` only, Python 3.9 compatible.
"""

__version__ = "0.1.0"
