"""The reference device: run a compiled Forge graph with MPS numerics and dump like the phone.

Images and storage follow Forge: every tensor that owns an MPSImage gets a float16 ``(N, H, W, C)``
array; a Concatenate input writes into its concat's image at its channel offset, a Collect input
into image ``k`` of the collected image, and layers read what MPS would read (MPS kernels read
image ``offset.z`` = the source's image number and channels from 0; Forge's own kernels —
DepthwiseConvolution, Custom, ZeroPadding, SpaceToDepthX2 — read image 0).  Which layer does
which, and each layer's kernel, come from its op in the registry (core.forge_ops).

Dumps follow ``Model.debugEvaluate`` + ``DocumentDirectoryDumper``: a tensor is dumped when none
of its consumers has several inputs; a Concat is dumped whole and once per input (channels sliced
out); a Collect writes no file of its own but one per input (image ``k``); an input that is a
Concat also triggers the fork's concat-slicing on the *Collect* (its quirk is reproduced, see
:meth:`ReferenceDevice._dump_collect`).
"""
import functools

import numpy as np

from core.forge_ops import ForgeOpError
from core.forge_ops.numerics import to_f16

from . import forge
from .forge import ReferenceDeviceError
from .params import FAULT_FACTOR, parse_fault, read_parameters
from .swift import BuilderProgram, parse_builder

F16 = np.float16


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()        # made once: making one costs ~0.5 ms


def _one_blas_thread():
    """One BLAS thread for a pass: a matrix product split over several threads sums in another
    order, so the device's numbers would depend on the host's cores (and a busy host makes
    threaded BLAS slower, not faster)."""
    return _blas_controller().limit(limits=1, user_api="blas")


class Storage:
    """An MPSImage: (N, H, W, C) float16 values (held as float32, see :mod:`.mps`)."""

    __slots__ = ("data",)

    def __init__(self, shape: forge.DataShape, data=None):
        if data is None:
            n = max(1, shape.num_images)
            data = np.zeros((n, shape.height, shape.width, shape.channels), dtype=np.float32)
        self.data = data


class ReferenceDevice:
    """A builder + Parameters folder compiled for the reference device.

    ``fault``: ``"KIND:LAYER"`` or (kind, layer) — inject one known conversion bug into one layer.
    """

    def __init__(self, builder, param_dir, fault=None):
        program = builder if isinstance(builder, BuilderProgram) else parse_builder(builder)
        self.program = program
        self.name = program.name
        self.model = program.model
        self.param_dir = str(param_dir)
        self.warnings = list(program.warnings)
        self.tensors = self.model.complete_graph()
        self.layers_by_name = {}
        for layer in self.model.layers:
            self.layers_by_name.setdefault(layer.name, layer)
        self.fault = parse_fault(fault) if isinstance(fault, (str, type(None))) else tuple(fault)
        self._check_fault()
        self._load_parameters()
        self._plan()
        self._input_image = None       # a feature map given as the input (forward_image)

    # -- compile ----------------------------------------------------------------------------
    def _first_tensor(self, layer):
        return next(t for t in self.tensors if t.layer is layer)

    def _check_fault(self):
        if self.fault is None:
            return
        kind, name = self.fault
        layer = self.layers_by_name.get(name)
        if layer is None:
            raise ReferenceDeviceError(
                f"--fault {kind}:{name}: no layer named {name!r} in {self.program.path}; layers: "
                + ", ".join(list(self.layers_by_name)[:30]) + (" ..." if len(self.layers_by_name) > 30 else ""))
        t = self._first_tensor(layer)
        wc = layer.weight_count(t.input.shape, t.shape)
        bc = layer.bias_count(t.input.shape, t.shape)
        if kind in ("transpose", "garbage", "scale") and wc == 0:
            raise ReferenceDeviceError(f"--fault {kind}:{name}: {layer.describe()} has no weights")
        if kind in ("bias", "shift") and bc == 0:
            raise ReferenceDeviceError(f"--fault {kind}:{name}: {layer.describe()} has no biases")
        if kind == "stride" and layer.op.window(layer.arguments) is None:
            raise ReferenceDeviceError(f"--fault stride:{name}: {layer.describe()} has no "
                                       "kernel/stride tuples (use a Conv, PointwConv, DepthwConv "
                                       "or pooling layer)")
        layer.fault = kind

    def _load_parameters(self):
        spec = self.program.loader
        for t in self.tensors:
            layer = t.layer
            if layer is None or layer.loaded:
                continue
            layer.loaded = True
            i, o = t.input.shape, t.shape
            wc, bc = layer.weight_count(i, o), layer.bias_count(i, o)
            if wc > 0:
                w = read_parameters(self.param_dir, spec, layer, "weights", wc, self.warnings,
                                    garbage=layer.fault == "garbage")
                layout = layer.weight_layout(i, o)
                if layer.fault == "transpose":
                    w = layer.op.misread_transposed(w, layout)
                elif layer.fault == "scale":
                    w = w * np.float32(FAULT_FACTOR)
                layer.weights = w.reshape(layout)
            if bc > 0:
                b = read_parameters(self.param_dir, spec, layer, "biases", bc, self.warnings)
                layer.biases = (None if layer.fault == "bias" else
                                b * np.float32(FAULT_FACTOR) if layer.fault == "shift" else b)

    def _plan(self):
        """Storage roots, read/write placements, dump decisions and when storage can be freed."""
        self.roots = {}
        for t in self.tensors:
            root, img, off = forge.resolve_destination(t)
            self.roots[id(t)] = (root, img, off)
        last = {}
        for i, t in enumerate(self.tensors):
            last[id(self.roots[id(t)][0])] = i
            if t.input is not None:
                last[id(self.roots[id(t.input)][0])] = i
        kept = {id(self.roots[id(t)][0]) for t in self.model.outputs}   # read after the run
        self.free_after = {}
        for rid, i in last.items():
            if rid not in kept:
                self.free_after.setdefault(i, []).append(rid)
        self.dumpable = [all(len(o.previous) <= 1 for o in t.next) for t in self.tensors]
        for t in self.tensors:
            layer = t.layer
            if layer is None:
                continue
            root, img, off = self.roots[id(t)]
            src_root, src_img, src_off = self.roots[id(t.input)]
            if src_off and t.input.op.gathers != "channels":
                self.warnings.append(
                    f"{layer.describe()} reads {t.input.short_id!r}, a concat input at channel "
                    f"offset {src_off}; MPS has no source channel offset, so it reads channels "
                    f"from 0 of the concat image (wrong data on the device too)")
            if (not layer.op.reads_source_image and src_img and not layer.op.wants_textures
                    and t.input.op.gathers != "images"):
                self.warnings.append(
                    f"{layer.describe()} reads {t.input.short_id!r} (image {src_img} of a Collect) "
                    "but Forge's own kernels read image 0; it gets image 0's data, as on the device")
            if not layer.op.writes_at_destination and img:
                self.warnings.append(
                    f"{layer.describe()} writes into image {img} of a Collect but ignores the "
                    "destination image number; it overwrites image 0, as on the device")

    # -- running ----------------------------------------------------------------------------
    def forward(self, rgba8: np.ndarray, dump: str = "none") -> dict:
        """One pass on an 8-bit RGBA (or RGB) image at its original size.

        Returns {"output": float16 HWC of the output tensor, "outputs": {tensor name: float16
        HWC} of every tensor the app reads after the run (the builder's ``outputs``), "dumps":
        {file name: (array, shape)}, "resized": bool}.  ``dump``: "all", "output" (the outputs)
        or "none".
        """
        rgba8 = np.asarray(rgba8)
        if rgba8.ndim != 3 or rgba8.shape[2] not in (3, 4) or rgba8.dtype != np.uint8:
            raise ReferenceDeviceError("the input texture must be an 8-bit RGB(A) HxWx3/4 image")
        self._texture = rgba8
        self._resized = False
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"), _one_blas_thread():
            return self._forward(dump)

    def forward_image(self, hwc: np.ndarray, dump: str = "none") -> dict:
        """One pass on a feature map given as the input MPSImage (``Model.evaluate(input:)``):
        for a builder whose ``Input(width:height:channels:)`` fixes the image, e.g. a one-layer
        reproducer.  Returns as :meth:`forward` (``resized`` is always False)."""
        s = self.model.input.shape
        hwc = np.asarray(hwc, np.float32)
        if hwc.shape != (s.height, s.width, s.channels):
            raise ReferenceDeviceError(
                f"the input image is {hwc.shape} (H, W, C) but the builder's Input is "
                f"({s.height}, {s.width}, {s.channels}); give an image of that shape")
        self._texture, self._resized = None, False
        self._input_image = to_f16(hwc)[None]
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            try:
                return self._forward(dump)
            finally:
                self._input_image = None

    def _forward(self, dump):
        storages = {}
        dumps = {}
        outputs = self.model.outputs
        for i, t in enumerate(self.tensors):
            if self._input_image is not None and t is self.model.input:
                storages[id(t)] = Storage(None, self._input_image)
            elif t.op.provides_texture:
                self._put_input(t, storages)
            elif t.layer is not None:
                self._run_layer(t, storages)
            if dump == "all" and self.dumpable[i]:
                self._dump(t, storages, dumps)
            elif dump == "output" and any(t is o for o in outputs):
                self._dump(t, storages, dumps)
            for rid in self.free_after.get(i, ()):
                storages.pop(rid, None)
        read = {t.short_id: self._read_tensor(t, storages).astype(F16) for t in outputs}
        return {"output": read[self.model.output.short_id], "outputs": read, "dumps": dumps,
                "resized": self._resized}

    def _storage(self, root, storages):
        s = storages.get(id(root))
        if s is None:
            s = storages[id(root)] = Storage(root.shape)
        return s

    def _put_input(self, t, storages):
        h, w = self._texture.shape[:2]
        s = t.shape
        if (s.width != -1 and s.width != w) or (s.height != -1 and s.height != h):
            raise ReferenceDeviceError(
                f"the image is {w}x{h} but Input(width: {s.width}, height: {s.height}) fixes the "
                "texture size; resize the image or start the network with Resize")
        # MPSImage(texture:featureChannels: 3): the 8-bit texture read as normalised R, G, B.
        rgb = self._texture[:, :, :3].astype(np.float32) / np.float32(255.0)
        storages[id(t)] = Storage(None, to_f16(rgb)[None])

    def _read_tensor(self, t, storages):
        """The tensor's own values (H, W, C) as stored in its MPSImage."""
        root, img, off = self.roots[id(t)]
        data = self._storage(root, storages).data
        s = t.shape
        return data[img, :s.height, :s.width, off:off + s.channels]

    def _source(self, t, storages):
        """What the layer of ``t`` reads: the full image its input lives in (H, W, C)."""
        x = t.input
        root, img, _ = self.roots[id(x)]
        data = self._storage(root, storages).data
        if not t.layer.op.reads_source_image or x.op.provides_texture:
            img = 0
        return data[img]

    def _run_layer(self, t, storages):
        layer = t.layer
        op = layer.op
        i_shape, o_shape = t.input.shape, t.shape
        if op.wants_textures:
            if not t.input.op.provides_texture:
                raise ReferenceDeviceError(f"{layer.describe()}: it reads the input texture; put "
                                           "it right after Input()")
            source = self._texture
            self._resized |= source.shape[:2] != (o_shape.height, o_shape.width)
        elif op.reads_all_images:
            images = self._storage(self.roots[id(t.input)][0], storages).data
            source = images[:i_shape.num_images, :i_shape.height, :i_shape.width,
                            :i_shape.channels]
        else:
            source = self._source(t, storages)
        self._write(t, self._compute(t, source), storages)

    def _compute(self, t, source):
        """The layer of ``t`` on ``source`` (what it reads), with its injected fault if any."""
        layer, i_shape, o_shape = t.layer, t.input.shape, t.shape
        swap = layer.fault == "stride" and _is_square(layer)
        run = _with_swapped_window(layer, i_shape, o_shape) \
            if layer.fault == "stride" and not swap else layer
        try:
            result = layer.op.compute(run, source, i_shape, o_shape)
        except ForgeOpError as exc:
            raise ReferenceDeviceError(f"{layer.describe()}: {exc}") from None
        if swap:
            result = _swap_xy(result, (o_shape.height, o_shape.width))
        return result

    # -- golden-input replay ----------------------------------------------------------------
    def replay(self, given: dict) -> dict:
        """Each layer run on the *given* values of what it reads, rounded to float16 as the
        device stores them: ``given`` maps Forge tensor names to HWC arrays (Keras's golden
        values); a layer whose input has no given value reads its replayed value instead (the
        second layer of a pair Keras does not expose, e.g. a Dense fused into its softmax).
        Returns ``{tensor name: HWC}`` of every layer it could run — the layer's own error,
        apart from what its inputs inherited."""
        out = {}

        def value(x):
            if x.short_id in given:
                return to_f16(np.asarray(given[x.short_id], np.float32))
            if x.short_id in out:
                return out[x.short_id]
            if x.op.gathers == "channels" and all(value(p) is not None for p in x.previous):
                return np.concatenate([value(p) for p in x.previous], axis=2)
            return None

        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            for t in self.tensors:
                if t.layer is None or t.op.wants_textures or t.input.op.provides_texture:
                    continue
                if t.layer.op.reads_all_images:
                    parts = [value(p) for p in t.input.previous]
                    if any(p is None for p in parts):
                        continue
                    source = np.stack(parts)
                else:
                    source = value(t.input)
                    if source is None:
                        continue
                out[t.short_id] = self._compute(t, source)
        return out

    def _write(self, t, result, storages):
        layer = t.layer
        root, img, off = self.roots[id(t)]
        if not layer.op.writes_at_destination:
            img, off = 0, 0
        h, w, c = result.shape
        if (root is t and id(root) not in storages and (h, w, c) == (
                t.shape.height, t.shape.width, t.shape.channels) and result.dtype == np.float32):
            storages[id(root)] = Storage(None, result[None])    # the result is the image
            return
        data = self._storage(root, storages).data
        if off + c > data.shape[3] or h > data.shape[1] or w > data.shape[2]:
            raise ReferenceDeviceError(
                f"{layer.describe()}: its {h}x{w}x{c} output does not fit the destination image "
                f"{data.shape[1]}x{data.shape[2]}x{data.shape[3]} at channel offset {off}")
        data[img, :h, :w, off:off + c] = result

    # -- dumps (DocumentDirectoryDumper) ----------------------------------------------------
    def file_name(self, t) -> str:
        return f"{self.name}-{t.short_id}.floats"

    def _dump(self, t, storages, dumps):
        if t.op.provides_texture:
            # The input MPSImage wraps the .bgra8Unorm texture: raw B, G, R bytes as floats.
            bgr = self._texture[:, :, 2::-1].astype(np.float32)
            dumps[self.file_name(t)] = (bgr, t.shape.as_array())
            return
        root = self.roots[id(t)][0]
        data = self._storage(root, storages).data
        if t.shape.num_images == 1:
            dumps[self.file_name(t)] = (data, t.shape.as_array())
            if t.op.gathers == "channels":
                self._dump_concat_inputs(t, data, 0, dumps)
        else:
            self._dump_collect(t, data, dumps)

    def _dump_concat_inputs(self, t, data, image, dumps):
        raw = data[image]
        for inp in t.previous:
            off = inp.destination_channel_offset
            dumps[self.file_name(inp)] = (raw[:, :, off:off + inp.shape.channels],
                                          inp.shape.as_array())

    def _dump_collect(self, t, data, dumps):
        """One file per Collect input from image k.

        Fork quirk reproduced: for an input that is a Concat the dumper slices the *Collect*
        (not the Concat) at that image, rewriting the files of the Collect's inputs; the Concat's
        own inputs get no file.  Files come out right only when the Concat is the first input.
        """
        for k, inp in enumerate(t.previous):
            dumps[self.file_name(inp)] = (data[inp.destination_image_number],
                                          inp.shape.as_array())
            if inp.op.gathers == "channels":
                self._dump_concat_inputs(t, data, k, dumps)
                if k > 0:
                    msg = (f"Collect {t.short_id!r}: input #{k} is the Concat {inp.short_id!r}; "
                           "like the fork's DocumentDirectoryDumper the files of the earlier "
                           "Collect inputs are overwritten with its image (put the Concat first)")
                    if msg not in self.warnings:
                        self.warnings.append(msg)


def _is_square(layer) -> bool:
    kernel, stride = layer.op.window(layer.arguments)
    return kernel[0] == kernel[1] and stride[0] == stride[1]


def _with_swapped_window(layer, in_shape, out_shape):
    """Stride fault: the layer with its (x, y) kernel and stride tuples swapped, its weights read
    in the swapped layout."""
    kernel, stride = layer.op.window(layer.arguments)
    swapped = forge.Layer(layer.op, layer.op.with_window(layer.arguments, kernel[::-1],
                                                         stride[::-1]), layer.line)
    if layer.weights is not None:
        swapped.weights = layer.weights.reshape(swapped.weight_layout(in_shape, out_shape))
    swapped.biases = layer.biases
    return swapped


def _swap_xy(result, out_hw):
    """Stride fault on a layer whose tuples are symmetric: the output written with x and y swapped."""
    swapped = np.ascontiguousarray(result.transpose(1, 0, 2))
    h, w = out_hw
    out = np.zeros((h, w, result.shape[2]), dtype=result.dtype)
    hh, ww = min(h, swapped.shape[0]), min(w, swapped.shape[1])
    out[:hh, :ww] = swapped[:hh, :ww]
    return out
