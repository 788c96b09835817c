"""The publish fixtures (fake and real mirrors behind real sshd, syncd run as a process)."""

from tests.publish.fixtures import fake_mirror, real_mirror, syncd

__all__ = ["fake_mirror", "real_mirror", "syncd"]
