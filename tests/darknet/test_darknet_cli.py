"""The yad2k CLI end to end."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core.darknet import write_random_weights
from core.darknet.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cli_converts_tiny_yolo_voc(cfg_dir, weights_cache, tmp_path, capsys):
    cfg = os.path.join(cfg_dir, "yolov2-tiny-voc.cfg")
    weights = weights_cache("yolov2-tiny-voc", 0, (0, 1, 0))
    out = tmp_path / "tiny-yolo-voc.h5"
    assert main([cfg, weights, str(out), "-p", "-q"]) == 0
    text = capsys.readouterr().out
    assert "Weights header: version 0.1.0 (16 bytes)" in text
    assert "Read 15867885 of 15867885 floats" in text and "Parameters: 15867885" in text
    assert "Classes: 20" in text
    assert (tmp_path / "tiny-yolo-voc_anchors.txt").read_text() == \
        "1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52\n"
    meta = json.loads((tmp_path / "tiny-yolo-voc_darknet.json").read_text())
    assert meta["classes"] == 20 and meta["heads"][0]["kind"] == "region"
    assert meta["heads"][0]["anchor_units"] == "grid" and meta["input_shape"] == [416, 416, 3]
    assert (tmp_path / "tiny-yolo-voc.png").stat().st_size > 0
    assert sorted(os.listdir(tmp_path)) == ["tiny-yolo-voc.h5", "tiny-yolo-voc.png",
                                            "tiny-yolo-voc_anchors.txt", "tiny-yolo-voc_darknet.json"]
    import core.darknet.layers  # noqa: F401
    from core.kerasenv import keras
    model = keras.models.load_model(out, compile=False)
    assert tuple(model.output.shape[1:]) == (13, 13, 125)


def test_cli_errors(cfg_dir, weights_cache, tmp_path, capsys):
    cfg = os.path.join(cfg_dir, "yolov2-tiny-voc.cfg")
    cut = tmp_path / "cut.weights"
    cut.write_bytes(open(weights_cache("yolov2-tiny-voc", 0), "rb").read()[:100000])
    assert main([cfg, str(cut), str(tmp_path / "m.keras")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("yad2k: error: ") and "too short" in err and "truncated download" in err
    assert main([cfg, str(cut), str(tmp_path / "m.pb")]) == 2
    assert not [f for f in os.listdir(tmp_path) if f.startswith("m")]
    padded = tmp_path / "pad.weights"
    padded.write_bytes(open(weights_cache("yolov2-tiny-voc", 0), "rb").read() + b"\0" * 8)
    assert main([cfg, str(padded), str(tmp_path / "p.keras"), "-q"]) == 1
    assert "--allow-extra" in capsys.readouterr().err
    assert main([cfg, str(padded), str(tmp_path / "p.keras"), "-q", "--allow-extra"]) == 0
    assert "ignored 8 extra bytes" in capsys.readouterr().out


def _mini_darknet(tmp_path):
    """(cfg, weights) of a two-layer detector with a yolo head and seeded weights."""
    cfg = tmp_path / "mini.cfg"
    cfg.write_text("[net]\nwidth=64\nheight=64\nchannels=3\n"
                   "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=2\npad=1\nactivation=leaky\n"
                   "[convolutional]\nfilters=21\nsize=1\nactivation=linear\n"
                   "[yolo]\nmask=0,1,2\nanchors=10,14, 23,27, 37,58\nclasses=2\nnum=3\n")
    weights = tmp_path / "mini.weights"
    write_random_weights(cfg, weights, seed=2)
    return cfg, weights


def test_cli_creates_the_output_folder(tmp_path, capsys):
    cfg, weights = _mini_darknet(tmp_path)
    out = tmp_path / "model_data" / "new" / "mini.keras"
    assert main([str(cfg), str(weights), str(out), "-q"]) == 0
    assert sorted(os.listdir(out.parent)) == ["mini.keras", "mini_anchors.txt", "mini_darknet.json"]
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main([str(cfg), str(weights), str(tmp_path / "taken" / "sub" / "m.keras"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err == (f"yad2k: error: output folder {tmp_path / 'taken' / 'sub'} cannot be created: "
                   f"{tmp_path / 'taken'} is a file; choose another output path\n")


def test_module_entry_point_subprocess(tmp_path):
    """python -m core.darknet on a small cfg: fully convolutional, yolo head, atomic outputs."""
    cfg, weights = _mini_darknet(tmp_path)
    out = tmp_path / "out" / "mini.keras"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "core.darknet", str(cfg), str(weights), str(out),
                          "--fully-convolutional", "-q"], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "Read 437 of 437 floats" in res.stdout
    assert sorted(os.listdir(out.parent)) == ["mini.keras", "mini_anchors.txt", "mini_darknet.json"]
    assert (out.parent / "mini_anchors.txt").read_text() == "10, 14, 23, 27, 37, 58\n"
    meta = json.loads((out.parent / "mini_darknet.json").read_text())
    assert meta["input_shape"] == [None, None, 3] and meta["heads"][0]["mask"] == [0, 1, 2]
    assert np.isclose(meta["heads"][0]["anchors"][2][1], 58)


@pytest.mark.slow
def test_cli_yolov2_coco_608_for_keras2metal(cfg_dir, weights_cache, tmp_path, capsys):
    """The file keras2metal YOLO reads from --model_dir: yolo.h5, 608x608, 425 channels."""
    cfg = os.path.join(cfg_dir, "yolov2.cfg")
    model_dir = tmp_path / "model_data"
    model_dir.mkdir()
    assert main([cfg, weights_cache("yolov2", 0), str(model_dir / "yolo.h5"), "-q"]) == 0
    assert "Read 50983561 of 50983561 floats" in capsys.readouterr().out
    import core.darknet.layers as dl
    from core.kerasenv import keras
    model = keras.models.load_model(model_dir / "yolo.h5", compile=False)
    assert tuple(model.input.shape[1:]) == (608, 608, 3)
    assert tuple(model.output.shape[1:]) == (19, 19, 425)
    assert isinstance(model.get_layer("reorg_27"), dl.DarknetReorg)
    assert (model_dir / "yolo_anchors.txt").read_text().startswith("0.57273, 0.677385, 1.87446")
