"""``python -m reports diff`` on two real runs and on a run against its baseline."""
from validation_helpers import DEFAULT_IMAGES, evaluate

from core.contracts import dumps
from reports.__main__ import main
from validation.baseline import build, write

FEW_IMAGES = sorted(DEFAULT_IMAGES.glob("*_00.png"))


def test_diff_of_a_clean_and_a_faulted_run_points_at_the_fault(suite_cache, tmp_path):
    clean = evaluate("default", suite_cache, FEW_IMAGES)
    faulted = evaluate("default", suite_cache, FEW_IMAGES, fault="bias:mix_a")
    a, b = tmp_path / "clean.json", tmp_path / "bias.json"
    a.write_text(dumps(clean))
    b.write_text(dumps(faulted))
    out, png = tmp_path / "diff.md", tmp_path / "diff.png"
    assert main(["diff", str(a), str(b), "--out", str(out), "--plot", str(png)]) == 0
    text = out.read_text()
    assert "run on the reference device" in text and png.is_file()
    row = next(line for line in text.splitlines() if line.startswith("| `mix_a`"))
    ratio = float(row.split("|")[4])                      # B/A of rel_error
    assert ratio > 10, row
    before = next(line for line in text.splitlines() if line.startswith("| `stem_conv`"))
    assert float(before.split("|")[4]) == 1.0             # untouched layers: the same error
    # a baseline against a run: the same table, the baseline's target named
    baseline = tmp_path / "baseline.json"
    write(baseline, build(clean, ["mean_abs", "max_abs", "rel_error"]))
    assert main(["diff", str(baseline), str(b), "--out", str(tmp_path / "d2.md")]) == 0
    assert "baseline on the reference device, Keras" in (tmp_path / "d2.md").read_text()


def test_diff_refuses_other_files_naming_them(tmp_path, capsys):
    other = tmp_path / "store.json"
    other.write_text('{"format": "keras2metal.store/1"}')
    assert main(["diff", str(other), str(other), "--out", str(tmp_path / "d.md")]) == 2
    assert "store.json: format is 'keras2metal.store/1'" in capsys.readouterr().err
