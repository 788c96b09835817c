"""The soak: a seeded series of ``syncd publish`` rounds to real mirrors, one fault a round.

- ``fleet``: the mirrors and sources, and one round (``SoakFleet``, ``RoundResult``);
- ``faults``: one class per fault (arm, trigger, heal, evidence) in a registry whose names are
  the CLI's and whose order the seed shuffles;
- ``invariants``: what must hold after every round;
- ``record``: what the soak reads of syncd's record and summary.
"""

from devtools.harness.soak.faults import FAULTS, REGISTRY
from devtools.harness.soak.fleet import RoundResult, SoakFleet, soak_root

__all__ = ["FAULTS", "REGISTRY", "RoundResult", "SoakFleet", "soak_root"]
