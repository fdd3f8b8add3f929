"""What the project's per-pixel kernels share (GELU, LayerNorm, Broadcast, Crop): a Swift
``CustomKernel`` class holding its parameters, and a Metal shader computing one 4-channel slice of
one output pixel per thread from whatever source pixels the kernel's body reads.

MPS stores an image of at most 4 channels as a ``texture2d`` and a wider one as a
``texture2d_array`` (Apple's MPSImage documentation; docs/forge.md), so every shader exists twice,
``<function>`` and ``<function>_array``, from one body; the Swift class picks the pipeline by the
source texture's type.  Integer parameters reach the shader as ``dims[6...]`` (after the source's
and the destination's width, height and channels), float parameters as ``params[...]``, in the
order the initialiser declares them.

Like every custom kernel Forge runs, they decrement ``readCount`` of a temporary source image
(the ``CustomKernel`` contract in Forge/Forge/Layers.swift) and ignore destination channel offsets
and image numbers (the passes insert copies where that matters).
"""
from ..signature import INT
from . import CustomKernelSpec

_SWIFT_TEMPLATE = """
/// {doc}
public class {cls}: CustomKernel {{
  let pipeline: MTLComputePipelineState
  let arrayPipeline: MTLComputePipelineState
{fields}
  public init({init_params}) {{
{assignments}    let library = device.makeDefaultLibrary()!
    pipeline = try! device.makeComputePipelineState(function: library.makeFunction(name: "{function}")!)
    arrayPipeline = try! device.makeComputePipelineState(
      function: library.makeFunction(name: "{function}_array")!)
  }}

  public func encode(commandBuffer: MTLCommandBuffer, sourceImage: MPSImage, destinationImage: MPSImage) {{
    var dims = [UInt32(sourceImage.width), UInt32(sourceImage.height),
                UInt32(sourceImage.featureChannels), UInt32(destinationImage.width),
                UInt32(destinationImage.height), UInt32(destinationImage.featureChannels){int_values}]
    var params: [Float] = [{float_values}]
    let chosen = sourceImage.texture.textureType == .type2DArray ? arrayPipeline : pipeline
    if let encoder = commandBuffer.makeComputeCommandEncoder() {{
      encoder.setComputePipelineState(chosen)
      encoder.setTexture(sourceImage.texture, index: 0)
      encoder.setTexture(destinationImage.texture, index: 1)
      encoder.setBytes(&dims, length: MemoryLayout<UInt32>.stride * dims.count, index: 0)
      encoder.setBytes(&params, length: MemoryLayout<Float>.stride * max(params.count, 1), index: 1)
      let w = chosen.threadExecutionWidth
      let h = chosen.maxTotalThreadsPerThreadgroup / w
      let slices = (destinationImage.featureChannels + 3) / 4
      encoder.dispatchThreadgroups(MTLSizeMake((destinationImage.width + w - 1) / w,
                                               (destinationImage.height + h - 1) / h, slices),
                                   threadsPerThreadgroup: MTLSizeMake(w, h, 1))
      encoder.endEncoding()
    }}
    if let image = sourceImage as? MPSTemporaryImage {{
      image.readCount -= 1
    }}
  }}
}}
"""

_METAL_VARIANT = """
#define READ(x, y, slice) src.read(uint2(x, y){read_slice})
kernel void {function}{suffix}({texture}<half, access::read> src [[texture(0)]],
                       {texture}<half, access::write> dst [[texture(1)]],
                       constant uint* dims [[buffer(0)]],
                       constant float* params [[buffer(1)]],
                       uint3 gid [[thread_position_in_grid]]) {{
  const uint inW = dims[0], inH = dims[1], inC = dims[2], outW = dims[3], outH = dims[4],
             outC = dims[5];
  if (gid.x >= outW || gid.y >= outH || gid.z * 4 >= outC) return;
  half4 value = half4(0.0h);
{body}
  dst.write(value, uint2(gid.x, gid.y){write_slice});
}}
#undef READ
"""


class PixelKernel(CustomKernelSpec):
    """A project kernel computing each output slice from source pixels (``metal_body``)."""
    forge_builtin = False
    metal_function = ""
    doc = ""
    why = ""                        # why MPS cannot do it: the conversion summary says so
    metal_body = ""                 # Metal lines setting ``value`` for slice gid.z at gid.xy

    @property
    def swift_source(self) -> str:
        names = [p.name for p in self.parameters]
        swift_types = ["Int" if p.type is INT else "Float" for p in self.parameters]
        fields = "".join(f"  let {n}: {t}\n" for n, t in zip(names, swift_types))
        init_params = ", ".join(["device: MTLDevice"] + [f"{n}: {t}" for n, t in zip(names, swift_types)])
        assignments = "".join(f"    self.{n} = {n}\n" for n in names)
        ints = [n for n, t in zip(names, swift_types) if t == "Int"]
        floats = [n for n, t in zip(names, swift_types) if t == "Float"]
        return _SWIFT_TEMPLATE.format(
            cls=self.swift_class, doc=self.doc, fields=fields, init_params=init_params,
            assignments=assignments, function=self.metal_function,
            int_values="".join(f", UInt32({n})" for n in ints), float_values=", ".join(floats))

    @property
    def metal_source(self) -> str:
        variants = [("", "texture2d", "", ""),
                    ("_array", "texture2d_array", ", slice", ", gid.z")]
        text = f"\n// {self.doc}"
        for suffix, texture, read_slice, write_slice in variants:
            text += _METAL_VARIANT.format(function=self.metal_function, suffix=suffix,
                                          texture=texture, read_slice=read_slice,
                                          write_slice=write_slice, body=self.metal_body)
        return text
