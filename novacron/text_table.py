"""Plain-text tables for run summaries: a label column, right-aligned value columns, a rule under the header."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(label: str, label_width: int, titles: Sequence[str], cell_width: int,
               rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    """``label`` over the rows' names (left-aligned in ``label_width``), ``titles`` over their cells
    (right-aligned in ``cell_width``), two spaces between columns and a dashed rule under the header."""
    header = f"{label:<{label_width}}  " + "  ".join(f"{title:>{cell_width}}" for title in titles)
    lines = [header, "-" * len(header)]
    lines += [f"{name:<{label_width}}  " + "  ".join(f"{cell:>{cell_width}}" for cell in cells) for name, cells in rows]
    return "\n".join(lines)
