"""``yolo-detect MANIFEST IMAGES --device-dump DIR`` on a small generated two-head detector:
the device's heads, read from a dump folder, decode to the boxes Keras finds."""
import json

import numpy as np
import pytest
from PIL import Image

from core.cli import main as keras2metal
from core.darknet import write_random_weights
from core.darknet.cli import main as yad2k
from core.yolo import match_boxes
from device_pull.detect_cli import main as yolo_detect
from device_pull.reference_device import run_reference_device

TWO_HEADS = """[net]
width=64
height=64
channels=3
[convolutional]
batch_normalize=1
filters=8
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky
[maxpool]
size=2
stride=2
[convolutional]
size=1
stride=1
filters=21
activation=linear
[yolo]
mask=2,3,4
anchors=4,6, 8,10, 14,20, 24,30, 40,44
classes=2
num=5
[route]
layers=-4
[upsample]
stride=2
[route]
layers=-1,0
[convolutional]
size=1
stride=1
filters=14
activation=linear
[yolo]
mask=0,1
anchors=4,6, 8,10, 14,20, 24,30, 40,44
classes=2
num=5
"""


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """(manifest, images folder, the reference device's dump folder) of the two-head net."""
    tmp = tmp_path_factory.mktemp("two_heads")
    cfg = tmp / "two_heads.cfg"
    cfg.write_text(TWO_HEADS)
    write_random_weights(cfg, tmp / "two_heads.weights", seed=3)
    assert yad2k([str(cfg), str(tmp / "two_heads.weights"), str(tmp / "two_heads.keras"),
                  "-q"]) == 0
    assert keras2metal([str(tmp / "two_heads.keras"), "--preprocessing", "yolo",
                        "--param_dir", str(tmp / "P"), "--src_out_dir", str(tmp / "S"),
                        "--model_dir", str(tmp / "M")]) == 0
    images = tmp / "images"
    images.mkdir()
    rng = np.random.default_rng(1)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            images / f"shot{k}.png")
    manifest = tmp / "P" / "two_heads.manifest.json"
    run_reference_device(tmp / "S" / "TwoHeadsBuilder.swift", tmp / "P", str(images),
                         tmp / "dump")
    return tmp, manifest, images


def test_device_dump_gives_the_boxes_keras_finds(detector, tmp_path):
    tmp, manifest, images = detector
    written = json.loads(manifest.read_text())
    assert [o["head"]["anchors"] for o in written["outputs"]] == [
        [[14.0, 20.0], [24.0, 30.0], [40.0, 44.0]], [[4.0, 6.0], [8.0, 10.0]]]
    common = ["--classes", str(tmp / "names.txt"), "-s", "0.4", "--max-boxes", "20"]
    (tmp / "names.txt").write_text("cat\ndog\n")
    assert yolo_detect([str(manifest), str(images), "--device-dump", str(tmp / "dump"),
                        "--out", str(tmp_path / "device")] + common) == 0
    assert yolo_detect([str(tmp / "two_heads.keras"), str(images),
                        "--out", str(tmp_path / "keras")] + common) == 0
    device = json.loads((tmp_path / "device" / "detections.json").read_text())
    keras = json.loads((tmp_path / "keras" / "detections.json").read_text())
    assert device["device_dump"] == str(tmp / "dump") and device["manifest"] == str(manifest)
    assert [i["image"] for i in device["images"]] == ["shot0.png", "shot1.png"]
    for on_device, in_keras in zip(device["images"], keras["images"]):
        assert on_device["detections"], "the seeded heads give boxes above 0.4"
        pairing = match_boxes(in_keras["detections"], on_device["detections"], 0.9)
        assert pairing.agreement >= 0.9
    assert (tmp_path / "device" / "shot0.png").is_file()


def test_device_dump_refuses_keras_only_options_and_unknown_images(detector, tmp_path, capsys):
    tmp, manifest, images = detector
    assert yolo_detect([str(manifest), str(images), "--device-dump", str(tmp / "dump"),
                        "--out", str(tmp_path), "--letterbox"]) == 2
    assert "--letterbox apply to a Keras model" in capsys.readouterr().err
    other = tmp_path / "elsewhere"
    other.mkdir()
    Image.new("RGB", (64, 64)).save(other / "stranger.png")
    assert yolo_detect([str(manifest), str(images / "shot0.png"), str(other / "stranger.png"),
                        "--device-dump", str(tmp / "dump"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "has no file among IMAGES" in err or "holds no run of this image" in err
