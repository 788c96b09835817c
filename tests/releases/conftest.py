"""The publish fixtures (fake mirrors behind real sshd, syncd run as a process)."""

from tests.publish.fixtures import fake_mirror, syncd

__all__ = ["fake_mirror", "syncd"]
