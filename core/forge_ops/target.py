"""What generated code runs on, and behaviour that depends on it.

The registry models the tognos fork of Forge at 83a5bb7 (2017-10-16).  What changes with the iOS
version (Metal Performance Shaders fixes and bugs) is written as :class:`Versioned` attributes of
the op or neuron it concerns, and read for a :class:`ForgeTarget`.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class ForgeTarget:
    ios: int


# The fork's DepthwiseConvolution needs MPSCNNDepthWiseConvolutionDescriptor: iOS 11 or later.
IOS11 = ForgeTarget(ios=11)
DEFAULT_TARGET = IOS11


class Versioned:
    """A value that holds from an iOS version on: ``Versioned({11: False})``."""

    def __init__(self, since: dict):
        self.since = dict(sorted(since.items()))

    def at(self, target: ForgeTarget):
        known = [ios for ios in self.since if ios <= target.ios]
        if not known:
            raise ValueError(f"no known behaviour before iOS {min(self.since)} "
                             f"(asked for iOS {target.ios})")
        return self.since[known[-1]]

    def __repr__(self):
        return f"Versioned({self.since})"
