"""Self-contained HTML pages (PNG figures inlined) for the KFP UI's HTML visualization."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from genaug.atomic import atomic_path


def table(rows: list[dict]) -> str:
    """An HTML table from a list of equal-keyed dicts; floats shown with 4 decimals."""
    if not rows:
        return ""
    keys = list(rows[0])

    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{fmt(r.get(k, ''))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def page(path: str | Path, title: str, parts: list[tuple[str, str | Path]]) -> None:
    """Write a page of (heading, content) parts: a .png path is inlined, other text is HTML."""
    out = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;margin:1em}td,th{padding:2px 8px;text-align:right}"
           "table{border-collapse:collapse}tr:nth-child(even){background:#f3f3f3}</style>",
           f"<h1>{html.escape(title)}</h1>"]
    for heading, content in parts:
        out.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(content, Path) or str(content).endswith(".png"):
            data = base64.b64encode(Path(content).read_bytes()).decode()
            out.append(f"<img alt='{html.escape(heading)}' src='data:image/png;base64,{data}'>")
        else:
            out.append(str(content))
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(out), encoding="utf-8")
