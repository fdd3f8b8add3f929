"""What the project's own kernels share: one Int parameter, a Swift ``CustomKernel`` class that
dispatches one thread per output pixel and 4-channel slice, and a Metal shader that gathers each
output channel from the source element the kernel's index arithmetic names.

Like every custom kernel Forge runs, they decrement ``readCount`` of a temporary source image
(the ``CustomKernel`` contract in Forge/Forge/Layers.swift) and ignore destination channel offsets
and image numbers.
"""
import numpy as np

from ..numerics import F32, to_f16
from ..signature import INT, Param
from . import CustomKernelSpec

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


class ProjectKernel(CustomKernelSpec):
    """A block rearrangement with one Int parameter ``parameter_name`` (the block size)."""
    forge_builtin = False
    parameter_name = ""
    metal_function = ""
    doc = ""
    metal_body = ""                 # Metal lines setting sx, sy, sc for output channel oc

    @property
    def parameters(self):
        return (Param(self.parameter_name, INT),)

    @property
    def swift_source(self) -> str:
        return _SWIFT_TEMPLATE.format(cls=self.swift_class, param=self.parameter_name,
                                      function=self.metal_function, doc=self.doc)

    @property
    def metal_source(self) -> str:
        return _METAL_TEMPLATE.format(function=self.metal_function, doc=self.doc,
                                      body=self.metal_body)

    def output_shape(self, height, width, channels, arguments):
        block = arguments[self.parameter_name]
        return (height // block, width // block, channels * block * block)

    @staticmethod
    def forward(x_hwc: np.ndarray, block: int) -> np.ndarray:
        """The rearrangement on float32 values (the kernel's index arithmetic, in numpy)."""
        raise NotImplementedError

    def compute(self, source, arguments, channels):
        return to_f16(np.asarray(self.forward(source.astype(F32), arguments[self.parameter_name]),
                                 dtype=F32))
