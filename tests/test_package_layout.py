"""Data flows one way between the packages: each may import only the packages listed here (in
any module, at any depth, inside functions too), so ``core`` stays conversion only."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MAY_IMPORT = {
    "core": set(),                                    # conversion only: nothing of the others
    "imagesets": set(),                               # image files and labels, no conversion
    "stores": {"core"},                               # HDF5 activation stores (manifest hash)
    "training": {"core"},                             # YOLO datasets, loss, training loop
    "golden": {"core", "imagesets", "stores"},        # Keras activations into stores
    "device_pull": {"core", "imagesets", "stores"},   # phone dumps, the reference device
    "validation": {"core", "golden", "device_pull", "imagesets", "stores"},   # the one judge
    "reports": {"core", "stores", "validation"},      # renders validation's typed results
}
# The suite's pytest entry point writes the report the user asked for after judging: the one
# place validation reaches reports, and only to render.
ENTRY_POINTS = {("validation/conftest.py", "reports")}


def imported_packages(path: Path) -> set:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(MAY_IMPORT)


def test_every_package_imports_only_what_it_may():
    wrong = []
    for package, allowed in MAY_IMPORT.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for other in imported_packages(path) - allowed - {package}:
                if (relative, other) not in ENTRY_POINTS:
                    wrong.append(f"{relative} imports {other}")
    assert not wrong, "\n".join(wrong)


def test_the_rule_can_fail(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text("def f():\n    from validation.verdicts import Results\n")
    assert imported_packages(stray) == {"validation"}
