"""A local run's HTML pages are published under names that end in .html, found where KFP's
local runner really puts artifacts."""

import os

from kfp import dsl, local
from kfp.dsl import HTML, Markdown, Output

from pipelines.pages import publish_pages


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def _write_pages(samples: Output[HTML], verdict: Output[Markdown]):
    from genaug.metrics import html

    html.page(samples.path, "samples", [("grid", "<p>ten images a class</p>")])
    with open(verdict.path, "w") as f:
        f.write("| model | decision |\n")


@dsl.pipeline(name="pages")
def _pages_pipeline():
    _write_pages()


def test_every_html_artifact_of_a_local_run_is_published_as_html(tmp_path):
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "kfp"),
               raise_on_error=True)
    _pages_pipeline()
    run_dir = tmp_path / "run"

    pages = publish_pages(tmp_path / "kfp", run_dir)

    assert list(pages) == ["write-pages/samples"]  # the Markdown verdict is no page
    page = run_dir / "pages" / "write-pages-samples.html"
    assert pages["write-pages/samples"] == str(page.resolve())
    (artifact,) = (tmp_path / "kfp").glob("*/write-pages/samples")
    assert page.read_text().startswith("<!doctype html") and os.path.samefile(page, artifact)
    assert publish_pages(tmp_path / "kfp", run_dir) == pages  # publishing again changes nothing
