"""Atomic file output: a reader sees the old file or the complete new one, never half of one.

Every writer of the project goes through here, so an interrupted run leaves no half-written
artifact that looks valid.
"""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path, suffix: str = None):
    """Yield a temporary path in the destination folder; rename it over ``path`` on success.

    The temporary name ends with ``suffix`` (default: the path's own suffix), since some
    writers (Keras) insist on it; it gets the permissions a plain ``open`` would give.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{suffix or path.suffix}",
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_with(path, write, suffix: str = None):
    """Call ``write(temporary path as str)`` and move the result into place; returns its value."""
    with atomic_path(path, suffix) as tmp:
        return write(str(tmp))


def write_chunks(path, chunks) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)


def write_bytes(path, data: bytes) -> None:
    write_chunks(path, [data])


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def inside(folder, name: str) -> Path:
    """``folder/name``, refusing any name that would land outside ``folder``."""
    folder = Path(folder).resolve()
    target = (folder / name).resolve()
    if target.parent != folder:
        raise ValueError(f"refusing to write {name!r} outside {folder}")
    return target
