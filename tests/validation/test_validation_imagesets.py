"""The suite on an image set as users have it: a folder-per-class tree, labels from the folders,
the first N or a seeded sample, accuracy with its 95% interval."""
import shutil

from validation_helpers import DEFAULT_IMAGES


def _class_tree(root):
    """The default model's labelled samples laid out as <class>/<image>.png."""
    for png in sorted(DEFAULT_IMAGES.glob("*.png")):
        cls = png.stem.rsplit("_", 1)[0]
        (root / cls).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, root / cls / png.name)
    return root


def test_folder_per_class_tree_with_sample(run_suite, tmp_path, rule_only_budget):
    tree = _class_tree(tmp_path / "shapes")
    run = run_suite("--model", "default", "--images", tree, "--labels", "folders",
                    "--sample", "12", "--sample-seed", "3", "--budget", rule_only_budget, "-q",
                    cwd=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    r = run.results
    assert len(r["images"]) == 12 and r["accuracy"]["labelled"] == 12
    device = r["accuracy"]["device"]
    low, high = device["top1_ci"]
    assert low < device["top1"] <= high <= 1.0 and device["images"] == 12
    again = run_suite("--model", "default", "--images", tree, "--labels", "folders",
                      "--sample", "12", "--sample-seed", "3", "--budget", rule_only_budget, "-q",
                      cwd=tmp_path)
    assert again.results["images"] == r["images"]                 # the same seeded sample
    first = run_suite("--model", "default", "--images", tree, "--limit", "3", "-q",
                      "--budget", rule_only_budget, cwd=tmp_path)
    assert first.results["images"] == ["circle_00.png", "circle_01.png", "circle_02.png"]
