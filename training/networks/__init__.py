"""THA1's networks (appendix A of the write-up): face morpher, two-algorithm rotator, combiner."""

from training.networks.combiner import Combiner
from training.networks.morpher import Morpher
from training.networks.rotator import Rotator

NETWORKS = {"morpher": Morpher, "rotator": Rotator, "combiner": Combiner}

__all__ = ["NETWORKS", "Combiner", "Morpher", "Rotator"]
