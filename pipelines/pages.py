"""The HTML pages of a local run, where a person opens them: ``<run folder>/pages/*.html``.

KFP names an artifact file after its output and gives it no extension (the train_generator
task's samples page is ``kfp/<job>/train-generator/samples``), so a browser or file manager
shows it as text or asks what to do with it. The path is KFP's to choose, on a cluster too,
so the steps keep writing there; after a local run each page is published once more, under
a name that ends in .html.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# What genaug.metrics.html.page writes first. Markdown and JSON artifacts never start so.
HTML_START = b"<!doctype html"


def publish_pages(pipeline_root: Path, run_dir: Path) -> dict[str, str]:
    """Publish every HTML artifact under ``pipeline_root`` (<root>/<job>/<task>/<output>)
    as ``run_dir/pages/<task>-<output>.html``; return {"<task>/<output>": absolute path}.

    The published file is a hard link (no second copy on disk, and it stays a plain file
    when the run folder is moved or archived), or a copy where links are not possible.
    """
    pages = {}
    for artifact in sorted(p for p in Path(pipeline_root).glob("*/*/*") if p.is_file() and _is_html(p)):
        task, output = artifact.parent.name, artifact.name
        target = Path(run_dir) / "pages" / f"{task}-{output}.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)  # published again: the artifact may have been rewritten
        try:
            os.link(artifact, target)
        except OSError:
            shutil.copyfile(artifact, target)
        pages[f"{task}/{output}"] = str(target.resolve())
    return pages


def _is_html(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(HTML_START)).lower() == HTML_START
