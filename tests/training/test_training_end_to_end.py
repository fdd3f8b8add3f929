"""End to end (slow): generated shapes -> HDF5 -> overfit a tiny YOLO (yolov2-tiny-voc.cfg at
128x128, new 3-anchor x 3-class head) -> ``yolo-detect`` finds the true boxes -> ``keras2metal``
converts the trained model -> the reference device computes what Keras computes and its output
decodes to the same boxes."""
import json
import time
from pathlib import Path

import numpy as np
import pytest
from core.manifest import load_manifest

pytestmark = pytest.mark.slow

SIZE = 128
N_IMAGES = 4
EPOCHS = 40
ANCHORS = "0.6,0.6, 1.0,1.0, 1.6,1.6"  # grid cells of the 4x4 grid: shapes are 25..64 px
MAX_REL = 1e-2  # float16 device vs float32 Keras


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def truths(voc, classes):
    from training.yolo.dataset import parse_voc_xml
    out = {}
    for i in range(N_IMAGES):
        name, _, boxes, labels = parse_voc_xml(voc / "Annotations" / f"shapes_{i:06d}.xml", classes)
        out[name] = [(classes[k], b.tolist()) for b, k in zip(boxes, labels)]
    return out


def unmatched(expected, found):
    """Truth boxes without a detection of the same class at IoU > 0.5."""
    missing = []
    for name, boxes in expected.items():
        dets = found.get(name, [])
        for label, box in boxes:
            best = max([iou(box, d["box"]) for d in dets if d["label"] == label] + [0.0])
            if best <= 0.5:
                missing.append(f"{name}: {label} {box} (best IoU {best:.2f}; found "
                               f"{[(d['label'], [round(v) for v in d['box']]) for d in dets]})")
    return missing


def test_overfit_detect_convert_and_run_on_the_reference_device(tmp_path, capsys):
    t0 = time.perf_counter()
    from core.darknet import build_keras_model, build_plan
    from core.darknet.converter import make_meta, save_converted
    from core.kerasenv import keras
    from training.yolo import dataset as yds
    from core.yolo.detect_cli import main as detect_main
    from training.yolo.train_cli import main as train_main
    from core.yolo_models import CFG_DIR

    # a converted tiny YOLO (random weights) at 128x128, as yad2k writes it
    keras.utils.set_random_seed(0)
    plan = build_plan(CFG_DIR / "yolov2-tiny-voc.cfg", input_size=(SIZE, SIZE))
    base = build_keras_model(plan)
    save_converted(base, make_meta(plan, base), tmp_path / "tiny.keras")

    voc = tmp_path / "shapes"
    assert yds.main(["generate", "--out", str(voc), "--count", str(N_IMAGES), "--seed", "3",
                     "--size", str(SIZE), "--quiet"]) == 0
    assert yds.main(["voc", str(voc), "--out", str(tmp_path / "data.h5"), "--quiet"]) == 0
    (tmp_path / "anchors.txt").write_text(ANCHORS + "\n")

    out = tmp_path / "trained.keras"
    t1 = time.perf_counter()
    assert train_main([str(tmp_path / "tiny.keras"), str(tmp_path / "data.h5"),
                       "--anchors", str(tmp_path / "anchors.txt"), "--out", str(out),
                       "--overfit", str(N_IMAGES), "--epochs", str(EPOCHS),
                       "--checkpoint-every", str(EPOCHS), "--quiet",
                       "--summary", str(tmp_path / "summary.json")]) == 0
    t_train = time.perf_counter() - t1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["final_loss"]["total"] < 0.2, summary["final_loss"]

    # yolo-detect on the training images finds every true box with the right class
    det_dir = tmp_path / "detections"
    assert detect_main([str(out), str(voc / "JPEGImages"), "--classes",
                        str(tmp_path / "trained_classes.txt"), "--out", str(det_dir)]) == 0
    report = json.loads((det_dir / "detections.json").read_text())
    found = {im["image"]: im["detections"] for im in report["images"]}
    expected = truths(voc, yds.SHAPE_CLASSES)
    assert sum(len(v) for v in expected.values()) >= N_IMAGES
    missing = unmatched(expected, found)
    assert not missing, "\n".join(missing)

    # keras2metal converts the trained model ...
    from core.cli import main as k2m_main
    params, src = tmp_path / "P", tmp_path / "S"
    assert k2m_main([str(out), "--preprocessing", "yolo", "--name", "shapes_yolo",
                     "--param_dir", str(params), "--src_out_dir", str(src),
                     "--model_dir", str(tmp_path / "M")]) == 0, capsys.readouterr().err
    builder = next(src.glob("*Builder.swift"))
    manifest = load_manifest(params / "shapes_yolo.manifest.json")
    # the sidecar the trainer wrote next to the model makes its output a detector's
    assert manifest.output.kind == "yolo"

    # ... and the reference device computes what Keras computes on every training image
    from device_pull.__main__ import main as device_main
    dev_dir = tmp_path / "device"
    assert device_main(["emulate", str(builder), "--param_dir", str(params),
                        "--images", str(voc / "JPEGImages"), "--out", str(dev_dir),
                        "--dump", "output", "--quiet"]) == 0
    run_logs = [json.loads(p.read_text()) for p in sorted(dev_dir.glob("*/run-shapes_yolo.json"))]
    assert len(run_logs) == N_IMAGES and not any(log["resized"] for log in run_logs)

    from PIL import Image

    from core.yolo.decode import decode_region, to_image_boxes
    from core.yolo.nms import per_class_nms
    from core.zoo import load_model_file
    model = load_model_file(out)
    anchors = np.array([float(v) for v in ANCHORS.split(",")]).reshape(-1, 2)
    device_found = {}
    for entry in run_logs:
        rgb = np.asarray(Image.open(voc / "JPEGImages" / entry["image"]).convert("RGB"), np.float32)
        want = np.asarray(model(rgb[None] / 255.0, training=False))[0]
        dump = dev_dir / Path(entry["image"]).stem / f"shapes_yolo-{entry['output_tensor']}.floats"
        got = np.fromfile(dump, "<f4").reshape(want.shape)
        rel = np.abs(got - want).max() / np.abs(want).max()
        assert rel < MAX_REL, f"{entry['image']}: device vs Keras max relative error {rel:.3g}"
        dec = decode_region(got, anchors, 3)
        boxes = to_image_boxes(dec.boxes, (SIZE, SIZE))
        device_found[entry["image"]] = [
            dict(box=boxes[i].tolist(), label=yds.SHAPE_CLASSES[k])
            for i, k, _ in per_class_nms(boxes, dec.scores, 0.3, 0.45, 100)]
    missing = unmatched(expected, device_found)
    assert not missing, "device: " + "\n".join(missing)
    print(f"end to end {time.perf_counter() - t0:.0f} s (training {t_train:.0f} s)")
