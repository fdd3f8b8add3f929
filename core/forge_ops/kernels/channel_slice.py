"""ChannelSliceKernel (the project's): channels ``[firstChannel, firstChannel + channels)`` of its
source as an image of their own, ``out[y][x][c] = in[y][x][firstChannel + c]``.

MPSCNN layers read their source from channel 0 (Forge has no source channel offset: the fork's
Concatenate refuses inputs with other readers for that reason, Forge/Forge/Tensor.swift), so a
layer that must see only some channels of a tensor — one group of a grouped convolution, Darknet's
``[route] groups=/group_id=`` — reads them through this kernel.  Like every kernel run through
Forge's ``Custom`` layer, it decrements the ``readCount`` of a temporary source
(Forge/Forge/Layers.swift) and writes at channel 0 of image 0 of its destination.

Pinned by tests/core/test_core_detector_ops.py::test_channel_slice_twin_and_metal_indexing.
"""
import numpy as np

from ..numerics import F32, to_f16
from ..signature import INT, Param
from . import CustomKernelSpec, custom_kernel

_SWIFT = """
/// Channels [firstChannel, firstChannel + channels) of the source as an image of their own.
public class ChannelSliceKernel: CustomKernel {
  let pipelines: [String: MTLComputePipelineState]
  let firstChannel: Int
  let channels: Int

  public init(device: MTLDevice, firstChannel: Int, channels: Int) {
    self.firstChannel = firstChannel
    self.channels = channels
    let library = device.makeDefaultLibrary()!
    var pipelines: [String: MTLComputePipelineState] = [:]
    for variant in ["aa", "at", "ta", "tt"] {
      let function = library.makeFunction(name: "channelSlice_" + variant)!
      pipelines[variant] = try! device.makeComputePipelineState(function: function)
    }
    self.pipelines = pipelines
  }

  public func encode(commandBuffer: MTLCommandBuffer, sourceImage: MPSImage, destinationImage: MPSImage) {
    // Images of up to 4 channels are 2D textures, wider ones 2D texture arrays (MPSImage).
    let variant = (sourceImage.texture.textureType == .type2DArray ? "a" : "t")
                + (destinationImage.texture.textureType == .type2DArray ? "a" : "t")
    let pipeline = pipelines[variant]!
    var params = [UInt32(firstChannel), UInt32(channels)]
    if let encoder = commandBuffer.makeComputeCommandEncoder() {
      encoder.setComputePipelineState(pipeline)
      encoder.setTexture(sourceImage.texture, index: 0)
      encoder.setTexture(destinationImage.texture, index: 1)
      encoder.setBytes(&params, length: MemoryLayout<UInt32>.stride * params.count, index: 0)
      let w = pipeline.threadExecutionWidth
      let h = pipeline.maxTotalThreadsPerThreadgroup / w
      let threadsPerGroup = MTLSizeMake(w, h, 1)
      let groups = MTLSizeMake((destinationImage.width + w - 1) / w,
                               (destinationImage.height + h - 1) / h, (channels + 3) / 4)
      encoder.dispatchThreadgroups(groups, threadsPerThreadgroup: threadsPerGroup)
      encoder.endEncoding()
    }
    if let image = sourceImage as? MPSTemporaryImage {
      image.readCount -= 1
    }
  }
}
"""

_METAL_VARIANT = """
// out[y][x][c] = in[y][x][first + c] for c < count, one thread per pixel and 4-channel slice;
// source {src_kind}, destination {dst_kind}.
kernel void channelSlice_{name}({src_type}<half, access::read> src [[texture(0)]],
                                {dst_type}<half, access::write> dst [[texture(1)]],
                                constant uint* params [[buffer(0)]],
                                uint3 gid [[thread_position_in_grid]]) {{
  const uint first = params[0], count = params[1];
  if (gid.x >= dst.get_width() || gid.y >= dst.get_height()) return;
  half4 value = half4(0.0h);
  for (uint k = 0; k < 4; ++k) {{
    const uint c = gid.z * 4 + k;
    if (c >= count) break;
    const uint sc = first + c;
    value[k] = src.read(uint2(gid.x, gid.y){src_slice})[sc % 4];
  }}
  dst.write(value, uint2(gid.x, gid.y){dst_slice});
}}
"""
_TEXTURES = {"a": ("texture2d_array", "a texture array"), "t": ("texture2d", "a 2D texture")}


def _metal_source() -> str:
    variants = []
    for src in "at":
        for dst in "at":
            variants.append(_METAL_VARIANT.format(
                name=src + dst, src_type=_TEXTURES[src][0], dst_type=_TEXTURES[dst][0],
                src_kind=_TEXTURES[src][1], dst_kind=_TEXTURES[dst][1],
                src_slice=", sc / 4" if src == "a" else "",
                dst_slice=", gid.z" if dst == "a" else ""))
    return "".join(variants)


def channel_slice(x_hwc: np.ndarray, first: int, count: int) -> np.ndarray:
    return np.ascontiguousarray(x_hwc[:, :, first:first + count])


@custom_kernel
class ChannelSliceKernel(CustomKernelSpec):
    swift_class = "ChannelSliceKernel"
    parameters = (Param("firstChannel", INT), Param("channels", INT))
    forge_builtin = False
    swift_source = _SWIFT
    metal_source = _metal_source()

    def output_shape(self, height, width, channels, arguments):
        return (height, width, arguments["channels"])

    def compute(self, source, arguments, channels):
        return to_f16(channel_slice(source.astype(F32), arguments["firstChannel"],
                                    arguments["channels"]))
