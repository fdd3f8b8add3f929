"""Hand-made manifests and dump folders in every layout the ingestion accepts."""
import json
import math
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "core" / "data" / "images"
MODEL = "toy"
H, W = 4, 6          # not square, so W/H order mistakes show


def _tensor(name, index, forge_type, shape, *, dump=True, compare=True, reference=None,
            inputs=()):
    if shape[0] > 0:
        forge_shape = [shape[1], shape[0], shape[2], 1]
    else:
        forge_shape = [-1, -1, -1, 1]
    return {"name": name, "index": index, "forge_type": forge_type, "shape": list(shape),
            "forge_shape": forge_shape, "dump_file": f"{MODEL}-{name}.floats" if dump else None,
            "inputs": list(inputs), "keras_layers": [name],
            "reference": reference or {"kind": "keras", "layer": name, "output_index": 0,
                                       "affine": None},
            "compare": compare, "weights": []}


TENSORS = [
    _tensor("__Input__", 0, "Input", [-1, -1, 3], compare=False,
            reference={"kind": "input_texture"}),
    _tensor("__Resize_1__", 1, "Resize", [H, W, 3], reference={"kind": "image"}),
    _tensor("conv1", 2, "Conv", [H, W, 8]),
    _tensor("odd", 3, "Conv", [H, W, 5]),
    _tensor("two", 4, "Conv", [H, W, 2]),
    _tensor("__Concat_cat__", 5, "Concat", [H, W, 13], inputs=["conv1", "odd"]),
    _tensor("__Collect_add__", 6, "Collect", [H, W, 8], dump=False, reference=None),
    _tensor("fc", 7, "Dense", [1, 1, 10]),
]


def manifest_dict(name=MODEL, tensors=None):
    tensors = tensors if tensors is not None else TENSORS
    return {
        "format": "keras2metal.manifest/1", "name": name,
        "builder": {"class": "ToyBuilder", "file": "ToyBuilder.swift"},
        "source": {"model": "toy.keras", "weights": "random", "seed": 0, "keras": "3.15.1",
                   "tensorflow": "2.21.0", "folded_model": None},
        "input": {"width": W, "height": H, "channels": 3, "keras_input": "input_layer"},
        "preprocessing": {"family": "none", "steps": []},
        "output": {"tensor": "fc", "kind": "classifier", "classes": 10},
        "tensors": tensors, "weights": [],
        "totals": {"layers": 6, "tensors": len(tensors), "parameters": 0},
    }


def write_manifest(folder: Path, **kwargs) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kwargs.get('name', MODEL)}.manifest.json"
    path.write_text(json.dumps(manifest_dict(**kwargs), indent=1))
    return path


def values(seed, shape):
    """float16-representable values, as the device produces."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2, shape).astype(np.float16).astype(np.float32)


def write_interleaved(path: Path, arr: np.ndarray, dtype="<f4"):
    np.ascontiguousarray(arr, dtype=dtype).tofile(path)


def write_padded(path: Path, arr: np.ndarray, dtype="<f4"):
    """Forge's ``toFloatArray()``: ``[slice][y][x][4]``; C < 3 stays ``[y][x][C]`` (r16/rg16)."""
    h, w, c = arr.shape
    if c < 3:
        return write_interleaved(path, arr, dtype)
    c4 = math.ceil(c / 4) * 4
    padded = np.zeros((h, w, c4), np.float32)
    padded[:, :, :c] = arr
    sliced = padded.reshape(h, w, c4 // 4, 4).transpose(2, 0, 1, 3)
    np.ascontiguousarray(sliced, dtype=dtype).tofile(path)


def expected_arrays(seed=0, tensors=None):
    """tensor name -> HWC array of a well-formed dump (concat = its inputs side by side)."""
    tensors = tensors if tensors is not None else TENSORS
    out = {}
    for k, t in enumerate(tensors):
        if t["dump_file"] and t["shape"][0] > 0 and t["forge_type"] != "Concat":
            out[t["name"]] = values(seed * 100 + k, t["shape"])
    out["__Concat_cat__"] = np.concatenate([out["conv1"], out["odd"]], axis=2)
    return out


def write_dump(folder: Path, seed=0, *, layouts=None, model=MODEL, shapes=True,
               input_size=None):
    """A well-formed Forge dump of one image; ``layouts`` maps tensor -> (writer, dtype)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = expected_arrays(seed)
    layouts = layouts or {}
    shape_json = {}
    for name, arr in arrays.items():
        fname = f"{model}-{name}.floats"
        writer, dtype = layouts.get(name, (write_interleaved, "<f4"))
        writer(folder / fname, arr, dtype)
        shape_json[fname] = [arr.shape[1], arr.shape[0], arr.shape[2], 1]
    if input_size is not None:
        w, h = input_size
        bgr = values(seed + 7, (h, w, 3))
        write_interleaved(folder / f"{model}-__Input__.floats", bgr)
        shape_json[f"{model}-__Input__.floats"] = [-1, -1, -1, 1]
        arrays["__Input__"] = bgr
    if shapes:
        (folder / f"shapes-{model}.json").write_text(json.dumps(shape_json, indent=2))
    return arrays
