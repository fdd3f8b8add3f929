"""yolo-detect end to end on models converted from seeded Darknet weights."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from core.darknet import write_random_weights
from core.darknet.cli import main as yad2k
from core.yolo.detect import heads_from_anchors, heads_from_meta, output_shapes
from core.yolo.detect_cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CFG_DIR = os.path.join(REPO, "core", "data", "darknet-cfg")

REGION_CFG = """[net]
width=96
height=64
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
filters=14
size=1
activation=linear
[region]
anchors=1,1, 2.5,1.5
classes=2
num=2
softmax=1
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for k, size in enumerate([(120, 80), (64, 64), (50, 90)]):
        Image.fromarray(rng.integers(0, 255, size[::-1] + (3,), dtype=np.uint8)).save(folder / f"im{k}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_region_model_detect(tmp_path, images, capsys):
    cfg = tmp_path / "reg.cfg"
    cfg.write_text(REGION_CFG)
    write_random_weights(cfg, tmp_path / "reg.weights", seed=4)
    assert yad2k([str(cfg), str(tmp_path / "reg.weights"), str(tmp_path / "reg.keras"), "-q"]) == 0
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    out = tmp_path / "out"
    rc = main([str(tmp_path / "reg.keras"), str(images), "--classes", str(names), "--out", str(out),
               "-s", "0.0", "--max-boxes", "5"])
    assert rc == 0
    assert sorted(os.listdir(out)) == ["detections.json", "im0.png", "im1.png", "im2.png"]
    report = json.loads((out / "detections.json").read_text())
    assert [r["image"] for r in report["images"]] == ["im0.png", "im1.png", "im2.png"]
    first = report["images"][0]
    assert (first["width"], first["height"]) == (120, 80)
    assert 0 < len(first["detections"]) <= 5
    det = first["detections"][0]
    assert det["label"] in ("cat", "dog") and len(det["box"]) == 4 and 0 <= det["score"] <= 1
    assert Image.open(out / "im0.png").size == (120, 80)
    # explicit anchors file, letterbox, single image
    rc = main([str(tmp_path / "reg.keras"), str(images / "im2.png"), "--classes", str(names),
               "--anchors", str(tmp_path / "reg_anchors.txt"), "--out", str(tmp_path / "o2"),
               "--letterbox"])
    assert rc == 0 and os.path.exists(tmp_path / "o2" / "detections.json")
    # wrong number of classes
    bad = tmp_path / "bad.txt"
    bad.write_text("a\nb\nc\n")
    assert main([str(tmp_path / "reg.keras"), str(images), "--classes", str(bad),
                 "--anchors", str(tmp_path / "reg_anchors.txt"), "--out", str(tmp_path / "o3")]) == 1
    assert "specify matching --anchors and --classes" in capsys.readouterr().err


def test_yolov3_tiny_detect_and_anchor_masks(tmp_path, images):
    cfg = os.path.join(CFG_DIR, "yolov3-tiny.cfg")
    write_random_weights(cfg, tmp_path / "y.weights", seed=1)
    assert yad2k([cfg, str(tmp_path / "y.weights"), str(tmp_path / "y.keras"), "-q",
                  "--input-size", "64x96"]) == 0
    import core.darknet.layers  # noqa: F401
    from core.kerasenv import keras
    model = keras.models.load_model(tmp_path / "y.keras", compile=False)
    meta = json.loads((tmp_path / "y_darknet.json").read_text())
    from_meta = heads_from_meta(meta, output_shapes(model))
    anchors = [float(v) for v in (tmp_path / "y_anchors.txt").read_text().split(",")]
    guessed = heads_from_anchors(output_shapes(model), anchors, 80)
    for a, b in zip(from_meta, guessed):
        assert a.kind == b.kind == "yolo"
        np.testing.assert_array_equal(a.anchors, b.anchors)
    names = os.path.join(CFG_DIR, "coco.names")
    rc = main([str(tmp_path / "y.keras"), str(images / "im0.png"), str(images / "im1.png"),
               "--classes", names, "--out", str(tmp_path / "out"), "-s", "0.2"])
    assert rc == 0
    report = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert len(report["images"]) == 2
