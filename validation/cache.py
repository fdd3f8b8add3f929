"""Where the suite keeps its conversions and stores, and how big that may grow.

The default cache is the user's cache directory (``$XDG_CACHE_HOME/keras2metal/validation``,
``~/.cache/keras2metal/validation`` on Linux, ``~/Library/Caches/keras2metal/validation`` on
macOS), so runs from any folder share it and nothing lands in the project;
``$KERAS2METAL_CACHE`` or ``--validation-cache DIR`` choose another folder.

Every conversion is one top-level entry (``<model>-<key>/`` with its stores inside).  An entry is
marked as used whenever a run uses it; at the end of a run, when the cache holds more than its
limit (``--cache-limit``, ``$KERAS2METAL_CACHE_LIMIT``, default 20 GB), the least recently used
entries are deleted until it fits — never the entries the current run uses, and never one
another process is writing (its lock is held).
"""
import fcntl
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

CACHE_ENV = "KERAS2METAL_CACHE"
LIMIT_ENV = "KERAS2METAL_CACHE_LIMIT"
DEFAULT_LIMIT = "20GB"
USED_MARK = ".last-used"
_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
          "T": 1e12, "TB": 1e12, "KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40}


class CacheLimitError(ValueError):
    """A cache size limit that cannot be read."""


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(os.path.expanduser(env))
    import platformdirs

    return Path(platformdirs.user_cache_dir("keras2metal")) / "validation"


def parse_size(text) -> int:
    """'20GB', '500 MiB', '1e9' → bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).upper() not in _UNITS:
        raise CacheLimitError(f"cache limit {text!r}: expected a size such as 20GB, 500MB or "
                              "2GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def default_limit() -> int:
    return parse_size(os.environ.get(LIMIT_ENV) or DEFAULT_LIMIT)


def mark_used(entry: Path) -> None:
    """Record that a run used this entry now (the pruning order)."""
    entry.mkdir(parents=True, exist_ok=True)
    (entry / USED_MARK).write_text(f"{time.time():.3f}\n")


def _last_used(entry: Path) -> float:
    try:
        return float((entry / USED_MARK).read_text())
    except (OSError, ValueError):
        return entry.stat().st_mtime


def folder_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000.0
    return f"{size:.2f} TB"


@dataclass
class CacheReport:
    root: Path
    size: int
    entries: int
    limit: int
    pruned: list = field(default_factory=list)      # names of the entries deleted

    def line(self) -> str:
        text = (f"cache: {self.root} holds {human(self.size)} in {self.entries} conversion(s) "
                f"(limit {human(self.limit)})")
        if self.pruned:
            text += (f"; removed {len(self.pruned)} least recently used: "
                     + ", ".join(self.pruned[:5]) + (" ..." if len(self.pruned) > 5 else ""))
        return text


def _entries(root: Path) -> list:
    return [p for p in root.iterdir() if p.is_dir() and ".tmp-" not in p.name] \
        if root.is_dir() else []


def prune(root, limit: int, keep=()) -> CacheReport:
    """Delete least recently used entries until the cache fits ``limit`` bytes."""
    root = Path(root)
    keep = {Path(k).resolve() for k in keep}
    sizes = {e: folder_size(e) for e in _entries(root)}
    total = sum(sizes.values()) + sum(p.stat().st_size for p in root.glob("*") if p.is_file()) \
        if root.is_dir() else 0
    pruned = []
    for entry in sorted(sizes, key=_last_used):
        if total <= limit:
            break
        if entry.resolve() in keep:
            continue
        lock = entry.with_suffix(".lock")
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue                   # another run is writing it
            try:
                shutil.rmtree(entry, ignore_errors=True)
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        total -= sizes[entry]
        pruned.append(entry.name)
    return CacheReport(root, total, len(sizes) - len(pruned), limit, pruned)
