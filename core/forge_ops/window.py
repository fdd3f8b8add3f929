"""Layers with a sliding window (convolutions and pooling): shape, placement, (x, y) tuples.

Forge takes ``kernel`` and ``stride`` as (x, y) = (width, height) tuples (Layers.swift doc
comments); the IR keeps Keras's (rows, cols).  MPS places the window of destination pixel ``d``
at ``offset + d*stride - (kernel >> 1)``; each subclass gives Forge's ``offset``.
"""
from .numerics import window_start
from .registry import ForgeOp
from .shape import DataShape, window_output_size


class WindowOp(ForgeOp):
    edge_mode = "zero"              # what MPS reads outside the source
    paddings = ("same", "valid")    # the PaddingType values the initialiser takes

    def window(self, arguments):
        return tuple(arguments["kernel"]), tuple(arguments["stride"])

    def padding(self, arguments) -> str:
        return arguments["padding"]

    def output_channels(self, arguments, inputs: DataShape) -> int:
        return inputs.channels

    def output_shape(self, arguments, inputs):
        (kx, ky), (sx, sy) = self.window(arguments)
        source, padding = inputs[0], self.padding(arguments)
        return DataShape(window_output_size(source.width, kx, sx, padding),
                         window_output_size(source.height, ky, sy, padding),
                         self.output_channels(arguments, source))

    def offset(self, padding: str, source: int, destination: int, kernel: int, stride: int) -> int:
        """One component of the MPSOffset Forge encodes."""
        raise NotImplementedError

    def offsets(self, arguments, in_shape: DataShape, out_shape: DataShape) -> tuple:
        (kx, ky), (sx, sy) = self.window(arguments)
        padding = self.padding(arguments)
        return (self.offset(padding, in_shape.width, out_shape.width, kx, sx),
                self.offset(padding, in_shape.height, out_shape.height, ky, sy))

    def first_window_start(self, size: int, kernel: int, stride: int, padding: str) -> int:
        """Where (on one axis) the first window starts; negative: it reaches into the edge."""
        out = window_output_size(size, kernel, stride, padding)
        return window_start(self.offset(padding, size, out, kernel, stride), kernel)
