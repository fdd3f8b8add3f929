"""Detectors with several heads on the reference device, seeded weights, one image: every tensor
within budget, every head judged, and the device's decoded boxes agreeing with Keras's as the
budget file asks (slow: whole networks; YOLOv3 at 416 takes minutes)."""
import pytest

from validation_helpers import ROOT

DOG = ROOT / "core" / "data" / "images" / "dog.jpg"
# network -> number of heads; Yolo-Fastest's budget sets no box threshold (budgets/yolo_fastest.toml)
DETECTORS = {"yolov3_tiny": 2, "yolov3": 3, "yolov3_spp": 3, "yolo_fastest": 2}


@pytest.mark.slow
@pytest.mark.parametrize("model", DETECTORS)
def test_detector_validates_and_its_boxes_agree(model, run_suite, tmp_path):
    run = run_suite("--model", model, "--images", DOG, "--workers", "1", "-q", cwd=tmp_path,
                    timeout=3600)
    assert run.returncode == 0, run.output[-4000:]
    r = run.results
    assert r["verdict"] == "pass" and r["first_divergence"] is None
    verdicts = {t["verdict"] for t in r["tensors"]}
    assert verdicts <= {"pass", "not_judged"} and "pass" in verdicts
    boxes = r["accuracy"]["boxes"]
    assert boxes["images"] == 1 and boxes["keras_boxes"] > 0 and not boxes["unmeasured"]
    check = next(c for c in r["accuracy"]["checks"] if c["name"] == "box_agreement")
    if model == "yolo_fastest":
        assert check["verdict"] == "not_judged" and "no threshold" in check["reason"]
    else:
        assert check["verdict"] == "pass", check["reason"]
    heads = [t for t in r["tensors"] if t["name"] in _head_tensors(r)]
    assert len(heads) == DETECTORS[model] and all(t["verdict"] == "pass" for t in heads)


def _head_tensors(results: dict) -> set:
    """The heads: the tensors no other tensor reads, but the input texture."""
    read = {name for t in results["tensors"] for name in t["inputs"]}
    return {t["name"] for t in results["tensors"] if t["name"] not in read and t["inputs"]}
