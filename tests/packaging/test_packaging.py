"""An installed package (pip install ., a wheel, tox) holds every data file the code reads: a
data file whose kind the package-data globs miss works from a clone and fails once installed."""
import fnmatch
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_every_data_file_in_the_packages_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = config["package-data"]["*"]
    packages = [p.rstrip("*") for p in config["packages"]["find"]["include"]]
    missed = [path.relative_to(ROOT).as_posix()
              for package in packages for path in sorted((ROOT / package).rglob("*"))
              if path.is_file() and path.suffix not in (".py", ".pyc")
              and "__pycache__" not in path.parts
              and not any(fnmatch.fnmatch(path.name, g) for g in globs)]
    assert not missed, (f"not installed with the package: {missed[:5]}; add their kinds to "
                        "[tool.setuptools.package-data] in pyproject.toml")
