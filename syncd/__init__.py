"""syncd: the publisher's orchestrator of pushsync."""

__version__ = "0.1.0"
