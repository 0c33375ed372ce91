"""Figures of a step: one self-contained HTML page for the KFP UI, and each PNG (plus the
page) as an artifact of the step's MLflow run."""

from __future__ import annotations

from pathlib import Path

from genaug.metrics import html
from genaug.services import tracking


def publish(html_path: str, title: str, parts: list[tuple[str, str | Path]], folder: str = "figures") -> None:
    """Write the page (when html_path is set) and log every PNG part to the active run."""
    if html_path:
        html.page(html_path, title, parts)
    for _, content in parts:
        if isinstance(content, Path) and content.suffix == ".png":
            tracking.log_artifact(content, folder)
    if html_path:
        slug = "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_")
        tracking.log_text(Path(html_path).read_text(encoding="utf-8"), f"{folder}/{slug}.html")
