"""pytest-benchmark JSON → markdown tables of times and ratios."""
import json

from reports.__main__ import main


def _bench(path, means, commit="abcdef1234"):
    data = {"machine_info": {"node": "ci", "python_version": "3.11.9",
                             "cpu": {"brand_raw": "Test CPU"}},
            "commit_info": {"id": commit}, "version": "5.2.3",
            "benchmarks": [
                {"group": "golden", "name": name, "fullname": f"tests/x.py::{name}",
                 "stats": {"mean": m, "median": m, "min": m * 0.9, "stddev": m / 10,
                           "rounds": 3},
                 "extra_info": {"capture_over_predict": 2.5} if name == "capture" else {}}
                for name, m in means.items()]}
    path.write_text(json.dumps(data))
    return path


def test_benchmarks_report(tmp_path):
    old = _bench(tmp_path / "old.json", {"capture": 2.0, "predict": 0.5}, "1111111111")
    new = _bench(tmp_path / "new.json", {"capture": 3.0, "predict": 0.5}, "2222222222")
    out = tmp_path / "bench.md"
    assert main(["benchmarks", str(old), str(new), "--out", str(out)]) == 0
    text = out.read_text()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| old") or line.startswith("| new")]
    assert ["old (11111111)", "golden", "`capture`", "2 s", "2 s", "1.8 s", "200 ms", "3",
            "4.00"] in rows                   # capture is 4× the fastest of its group
    assert "## Ratios to old (11111111)" in text
    assert "1.50" in text and "1.00" in text  # new/old
    assert "500 ms" in text
    assert "`capture_over_predict`" in text and "2.5" in text
    again = tmp_path / "again.md"
    main(["benchmarks", str(old), str(new), "--out", str(again)])
    assert again.read_text() == text


def test_benchmarks_rejects_other_json(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "keras2metal.results/1"}))
    assert main(["benchmarks", str(bad), "--out", str(tmp_path / "b.md")]) == 2
    assert "bad.json" in capsys.readouterr().err
