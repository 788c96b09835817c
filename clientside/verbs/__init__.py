"""What the client does, one module per verb: ``sync`` and ``status`` (asked for by a push),
``doctor`` and ``setup`` (run by the mirror's admin)."""
