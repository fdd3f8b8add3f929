"""Deterministic formatting: fixed precision numbers and GitHub markdown tables (pandas + tabulate).

Every number in a report goes through one of these functions, so the same measurement always
renders to the same text and reports diff cleanly in review.
"""
import math
from pathlib import Path

import pandas as pd

from core.atomic import write_text

NA = "n/a"


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def num(x, digits: int = 3) -> str:
    """A measurement: 3 significant digits, scientific below 1e-3 and from 1e5 up; ``n/a`` for None."""
    if x is None or not _is_number(x):
        return NA if x is None or isinstance(x, bool) else str(x)
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{digits - 1}e}"
    text = f"{x:.{digits}g}"
    if "e" in text:                       # 3 significant digits of e.g. 12345 → plain
        text = f"{x:.0f}"
    return text


def err(x) -> str:
    """An error metric: always scientific with 3 significant digits (``0`` for exactly zero)."""
    if x is None or not _is_number(x):
        return NA if x is None or isinstance(x, bool) else str(x)
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.2e}"


def cosine(x) -> str:
    """Cosine similarity: 6 decimals (the interesting digits are the ones near 1)."""
    if x is None or not _is_number(x):
        return NA
    x = float(x)
    if math.isnan(x):
        return "nan"
    return f"{x:.6f}"


def integer(x) -> str:
    """A count with thousands separators."""
    if x is None or not _is_number(x):
        return NA
    return f"{int(x):,}"


def percent(x) -> str:
    """A fraction in [0, 1] as a percentage with one decimal."""
    if x is None or not _is_number(x):
        return NA
    return f"{100.0 * float(x):.1f}%"


def fps(x) -> str:
    if x is None or not _is_number(x):
        return NA
    return f"{float(x):.1f}"


def shape(s) -> str:
    if not s:
        return NA
    return "×".join(str(int(v)) for v in s)


def value_range(r) -> str:
    if not r or len(r) != 2 or any(v is None for v in r):
        return NA
    return f"[{num(r[0])}, {num(r[1])}]"


def code(name) -> str:
    """A name in backticks, safe inside a table cell."""
    if name is None or name == "":
        return NA
    return "`" + str(name).replace("`", "'").replace("|", "\\|") + "`"


def cell(text) -> str:
    """Free text safe inside a table cell (pipes escaped, newlines flattened)."""
    if text is None:
        return NA
    return str(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def table(rows, columns, align=None) -> str:
    """GitHub markdown table of already formatted strings, columns in the given order.

    ``align``: one of "left"/"right"/"center" per column (default left).
    """
    frame = pd.DataFrame([[row.get(c, NA) for c in columns] for row in rows], columns=columns,
                         dtype=object)
    if frame.empty:
        frame = pd.DataFrame([[""] * len(columns)], columns=columns)
    colalign = tuple(align) if align else ("left",) * len(columns)
    return frame.to_markdown(index=False, tablefmt="github", disable_numparse=True,
                             colalign=colalign)


def relpath(target, start) -> str:
    """``target`` relative to the folder ``start``, with forward slashes (links in markdown)."""
    import os

    try:
        return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()
    except ValueError:                     # another drive on Windows
        return Path(target).as_posix()


def write_markdown(path, text: str) -> Path:
    """Write atomically, with exactly one trailing newline."""
    path = Path(path)
    write_text(path, text.rstrip("\n") + "\n")
    return path
