"""The project's own Forge ``CustomKernel``s, for ops Forge has no layer for.

Each kernel has three faces kept together: the Swift class and Metal shader the emitter writes
next to the builder, and a numpy forward function that pins its index arithmetic (the reference
device runs it; tests compare it with the Keras op it replaces).

* ``SpaceToDepthKernel(blockSize:)``: TensorFlow's ``space_to_depth``:
  ``out[y][x][(dy*b + dx)*C + c] = in[b*y + dy][b*x + dx][c]``.
* ``DarknetReorgKernel(stride:)``: Darknet's ``reorg`` layer exactly as ``reorg_cpu(forward=0)``
  computes it, which is neither TensorFlow's nor Forge's ``SpaceToDepthX2`` rearrangement.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np


def space_to_depth(x_hwc: np.ndarray, blockSize: int = 2) -> np.ndarray:  # noqa: N803 (Swift label)
    h, w, c = x_hwc.shape
    b = blockSize
    blocks = x_hwc.reshape(h // b, b, w // b, b, c).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(h // b, w // b, b * b * c)


def darknet_reorg(x_hwc: np.ndarray, stride: int = 2) -> np.ndarray:
    """Darknet's reorg: its flat CHW buffer viewed as (C/s², H·s, W·s), space-to-depth'ed."""
    h, w, c = x_hwc.shape
    s = stride
    view = x_hwc.transpose(2, 0, 1).reshape(c // (s * s), h, s, w, s)
    out = view.transpose(2, 4, 0, 1, 3).reshape(c * s * s, h // s, w // s)
    return out.transpose(1, 2, 0)


@dataclass(frozen=True)
class CustomKernelSpec:
    swift_class: str
    numpy_forward: Callable
    output_shape: Callable          # (h, w, c, **args) -> (h, w, c)
    swift_source: str
    metal_source: str


_SWIFT_TEMPLATE = """
/// {doc}
public class {cls}: CustomKernel {{
  let pipeline: MTLComputePipelineState
  let {param}: Int

  public init(device: MTLDevice, {param}: Int) {{
    self.{param} = {param}
    let library = device.makeDefaultLibrary()!
    let function = library.makeFunction(name: "{function}")!
    pipeline = try! device.makeComputePipelineState(function: function)
  }}

  public func encode(commandBuffer: MTLCommandBuffer, sourceImage: MPSImage, destinationImage: MPSImage) {{
    var params = [UInt32(sourceImage.width), UInt32(sourceImage.height),
                  UInt32(sourceImage.featureChannels), UInt32({param}),
                  UInt32(destinationImage.featureChannels)]
    if let encoder = commandBuffer.makeComputeCommandEncoder() {{
      encoder.setComputePipelineState(pipeline)
      encoder.setTexture(sourceImage.texture, index: 0)
      encoder.setTexture(destinationImage.texture, index: 1)
      encoder.setBytes(&params, length: MemoryLayout<UInt32>.stride * params.count, index: 0)
      let w = pipeline.threadExecutionWidth
      let h = pipeline.maxTotalThreadsPerThreadgroup / w
      let threadsPerGroup = MTLSizeMake(w, h, 1)
      let slices = (destinationImage.featureChannels + 3) / 4
      let groups = MTLSizeMake((destinationImage.width + w - 1) / w,
                               (destinationImage.height + h - 1) / h, slices)
      encoder.dispatchThreadgroups(groups, threadsPerThreadgroup: threadsPerGroup)
      encoder.endEncoding()
    }}
    if let image = sourceImage as? MPSTemporaryImage {{
      image.readCount -= 1
    }}
  }}
}}
"""

_METAL_TEMPLATE = """
// {doc}
kernel void {function}(texture2d_array<half, access::read> src [[texture(0)]],
                       texture2d_array<half, access::write> dst [[texture(1)]],
                       constant uint* params [[buffer(0)]],
                       uint3 gid [[thread_position_in_grid]]) {{
  const uint inW = params[0], inH = params[1], inC = params[2], s = params[3], outC = params[4];
  const uint outW = inW / s, outH = inH / s;
  if (gid.x >= outW || gid.y >= outH) return;
  half4 value = half4(0.0h);
  for (uint k = 0; k < 4; ++k) {{
    const uint oc = gid.z * 4 + k;
    if (oc >= outC) break;
{body}
    value[k] = src.read(uint2(sx, sy), sc / 4)[sc % 4];
  }}
  dst.write(value, uint2(gid.x, gid.y), gid.z);
}}
"""

_S2D_BODY = """    const uint block = oc / inC, sc = oc % inC;
    const uint sx = gid.x * s + block % s, sy = gid.y * s + block / s;"""

_REORG_BODY = """    // CHW-flat output element F = (a, b, c2, h, w) over dims (s, s, inC/s^2, inH, inW)
    const uint F = (oc * outH + gid.y) * outW + gid.x, q = inC / (s * s);
    const uint w = F % inW, h = (F / inW) % inH, c2 = (F / (inW * inH)) % q;
    const uint b = (F / (inW * inH * q)) % s, a = F / (inW * inH * q * s);
    const uint src = (((c2 * inH + h) * s + a) * inW + w) * s + b;   // CHW-flat input element
    const uint sc = src / (inW * inH), sy = (src / inW) % inH, sx = src % inW;"""


def _spec(cls, param, function, doc, body, forward, shape):
    return CustomKernelSpec(
        swift_class=cls, numpy_forward=forward, output_shape=shape,
        swift_source=_SWIFT_TEMPLATE.format(cls=cls, param=param, function=function, doc=doc),
        metal_source=_METAL_TEMPLATE.format(function=function, doc=doc, body=body))


CUSTOM_KERNELS = {
    "SpaceToDepthKernel": _spec(
        "SpaceToDepthKernel", "blockSize", "spaceToDepth",
        "TensorFlow space_to_depth: out[y][x][(dy*b+dx)*C+c] = in[b*y+dy][b*x+dx][c].",
        _S2D_BODY, space_to_depth,
        lambda h, w, c, blockSize=2: (h // blockSize, w // blockSize, c * blockSize ** 2)),
    "DarknetReorgKernel": _spec(
        "DarknetReorgKernel", "stride", "darknetReorg",
        "Darknet's reorg layer (reorg_cpu, forward = 0), element for element.",
        _REORG_BODY, darknet_reorg,
        lambda h, w, c, stride=2: (h // stride, w // stride, c * stride ** 2)),
}
