"""Plain-text tables for a terminal: left-aligned columns under an underlined header."""

from __future__ import annotations


def aligned(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """The header, a line of dashes under each column, then one line per row; columns are
    as wide as their widest cell and two spaces apart, trailing spaces dropped."""
    body = [header, *rows]
    widths = [max(len(line[i]) for line in body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in body]
    lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
    return lines
