"""The soak: a seeded series of ``syncd publish`` rounds to real mirrors, one fault a round.

- ``fleet``: the mirrors, the sources and the syncd that pushes to them (``Fleet``);
- ``faults``: one class per fault (draw, arm, trigger, heal, evidence) in a registry whose names
  are the CLI's and whose order the seed shuffles;
- ``invariants``: what must hold after every round;
- ``rounds``: the seeded rounds (``SoakFleet``, ``RoundResult``);
- ``record``: what the soak reads of syncd's record and summary.
"""

from devtools.harness.soak.faults import FAULTS, REGISTRY
from devtools.harness.soak.fleet import soak_root
from devtools.harness.soak.rounds import CI_MIRRORS, CI_SEED, RoundResult, SoakFleet

__all__ = ["CI_MIRRORS", "CI_SEED", "FAULTS", "REGISTRY", "RoundResult", "SoakFleet", "soak_root"]
