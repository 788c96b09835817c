"""The pure core of syncd: every decision, as plain functions over plain data (no I/O)."""
