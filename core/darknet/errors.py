"""Errors raised by the Darknet reader, writer and converter.

Every message names the file, the line / section / layer concerned and what to do about it.
"""


class DarknetError(ValueError):
    """Base class of every error the Darknet package raises on bad input."""


class CfgError(DarknetError):
    """A `.cfg` file is malformed or uses something Darknet (or this converter) does not know."""


class WeightsError(DarknetError):
    """A `.weights` file does not fit its cfg."""


class WeightsHeaderError(WeightsError):
    """The header is implausible, or its version disagrees with the file size."""


class WeightsTruncatedError(WeightsError):
    """The file ends before every layer of the cfg got its floats."""


class WeightsExtraBytesError(WeightsError):
    """The file has bytes left over after every layer of the cfg got its floats."""


class WeightsCfgMismatchError(WeightsError):
    """The values read do not make sense for the cfg (weights written for another network)."""
