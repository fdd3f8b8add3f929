"""Human-facing views of a conversion: Forge's summary table, the graph picture, a quick top-5."""
import shutil
import subprocess
from pathlib import Path

import numpy as np

from core.atomic import inside, write_text

SAMPLE_IMAGES = Path(__file__).parent / "data" / "images"


def forge_summary(manifest) -> str:
    """The table Forge's ``Model.summary()`` prints, from the manifest."""
    params = {}
    for entry in manifest.weights:
        params[entry.layer] = params.get(entry.layer, 0) + entry.count
    consumers = {}
    for tensor in manifest.tensors:
        for name in tensor.inputs:
            consumers[name] = consumers.get(name, 0) + 1
    lines = [f"{'Layer/Tensor':<30} {'Type':<10} {'Output Shape':<16} {'Parameters':<13} In/Out",
             "-" * 80]
    for tensor in manifest.tensors:
        w, h, c, n = tensor.forge_shape
        shape = "(" + ", ".join("?" if v < 0 else str(v) for v in (w, h, c, n)) + ")"
        lines.append(f"{tensor.name[:30]:<30} {tensor.forge_type:<10} {shape:<16} "
                     f"{params.get(tensor.name, 0):<13} "
                     f"{len(tensor.inputs)}/{consumers.get(tensor.name, 0)}")
    totals = manifest.totals
    lines += ["-" * 80, f"Number of layers: {totals.layers} (tensors: {totals.tensors})",
              f"Total parameters: {totals.parameters}"]
    return "\n".join(lines)


def graph_dot(manifest) -> str:
    """The Forge graph in the format of the fork's ``Model.debugGraph()`` (quoted node ids)."""
    lines = ["digraph G {", "concentrate=True;", "rankdir=TB;", "node [shape=record];"]
    for tensor in manifest.tensors:
        w, h, c, n = tensor.forge_shape
        shape = "(" + ", ".join("?" if v < 0 else str(v) for v in (w, h, c, n)) + ")"
        lines.append(f'  "{tensor.name}" [label="{tensor.name} : {tensor.forge_type}'
                     f'\\n{shape}"];')
    for tensor in manifest.tensors:
        for name in tensor.inputs:
            lines.append(f'  "{name}" -> "{tensor.name}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph_plot(manifest, folder: Path) -> list:
    """Write ``<name>.dot``, and ``<name>.png`` when Graphviz's ``dot`` is installed."""
    dot_path = inside(folder, f"{manifest.name}.dot")
    write_text(dot_path, graph_dot(manifest))
    written = [dot_path]
    if shutil.which("dot"):
        png = inside(folder, f"{manifest.name}.png")
        subprocess.run(["dot", "-Tpng", "-o", str(png), str(dot_path)], check=True)
        written.append(png)
    return written


def classify_images(model, result, family: str, image_dir=None) -> str:
    """Top-5 of the original and the folded model for each image (the original's ``-r``)."""
    from core.errors import ConversionError
    from core.kerasenv import keras
    from core.seeding import preprocess_batch

    if len(model.outputs) > 1:
        raise ConversionError(f"-r ranks a classifier's classes, but model {model.name!r} has "
                              f"{len(model.outputs)} outputs (a detector's heads); run yolo-detect "
                              "on its Keras model or on the phone's dumps instead")

    folded = keras.models.load_model(str(result.folded_path), compile=False) \
        if result.folded_path else None
    h, w = result.manifest.input.height, result.manifest.input.width
    lines = []
    folder = Path(image_dir or SAMPLE_IMAGES)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for path in paths:
        rgb = keras.utils.img_to_array(keras.utils.load_img(path, target_size=(h, w),
                                                             interpolation="lanczos"))
        x = preprocess_batch(rgb[None] / np.float32(255.0), family)
        for label, net in (("original", model), ("folded", folded)):
            if net is None:
                continue
            scores = np.asarray(net(x, training=False)).reshape(-1)
            top = np.argsort(-scores)[:5]
            lines.append(f"{Path(path).name} {label:>8}: " +
                         ", ".join(f"{i}:{scores[i]:.4f}" for i in top))
    return "\n".join(lines)
