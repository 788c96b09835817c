"""Development tooling for pushsync: the real-server harness, the simulated fleet and the demo.

Used by the tests, the benchmarks and ``scripts/demo``; never shipped in the wheel, and never
imported by ``syncd`` or ``clientside``.
"""
