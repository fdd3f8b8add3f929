"""Forge's ``DataShape`` (Forge/Forge/DataShape.swift): width, height, channels, numImages.

-1 means unknown (``Input()`` without a size).  The converter's IR keeps (H, W, C) tuples;
:meth:`DataShape.from_hwc` and :attr:`DataShape.hwc` cross between the two.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class DataShape:
    width: int = -1
    height: int = -1
    channels: int = -1
    num_images: int = 1

    @classmethod
    def from_hwc(cls, hwc, num_images: int = 1) -> "DataShape":
        height, width, channels = hwc
        return cls(int(width), int(height), int(channels), num_images)

    @property
    def hwc(self) -> tuple:
        return (self.height, self.width, self.channels)

    @property
    def fully_specified(self) -> bool:
        return self.width != -1 and self.height != -1 and self.channels != -1

    def as_array(self) -> list:
        """``DataShape.asArray`` (fork): what ``shapes-<model>.json`` records."""
        return [self.width, self.height, self.channels, self.num_images]

    def __repr__(self):
        def dim(v):
            return "?" if v == -1 else str(v)
        return f"({dim(self.width)}, {dim(self.height)}, {dim(self.channels)}, {dim(self.num_images)})"


def window_output_size(size: int, kernel: int, stride: int, padding: str) -> int:
    """One axis of ``outputShape(for:)`` of Forge's windowed layers (Convolution and Pooling in
    Forge/Forge/Layers.swift): ``(size-1)/stride+1`` for .same, ``(size-kernel)/stride+1`` for
    .valid."""
    if padding == "same":
        return (size - 1) // stride + 1
    return (size - kernel) // stride + 1
