"""Compile the pipelines into the YAML files a person uploads in the KFP UI, and check them.

    python -m pipelines.compile [--out pipelines/build]

writes genaug.yaml (one run) and genaug-experiment.yaml (the sweep). Document 0 must parse
into KFP's PipelineSpec proto and document 1 into its PlatformSpec (misspelled fields are
rejected), so what is uploaded is what KFP accepts. The image is GENAUG_IMAGE (see
components/settings.py). Output is byte-identical for identical sources and settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from google.protobuf import json_format
from kfp import compiler
from kfp.pipeline_spec import pipeline_spec_pb2

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "pipelines" / "build"


def targets() -> dict:
    from pipelines.experiment_pipeline import experiment_pipeline
    from pipelines.genaug_pipeline import genaug_pipeline

    return {"genaug.yaml": genaug_pipeline, "genaug-experiment.yaml": experiment_pipeline}


def validate(path: Path) -> tuple[pipeline_spec_pb2.PipelineSpec, pipeline_spec_pb2.PlatformSpec]:
    """(PipelineSpec, PlatformSpec) of a compiled file; ValueError naming the file if either
    document does not parse into KFP's protos."""
    docs = list(yaml.safe_load_all(path.read_text()))
    if len(docs) != 2:
        raise ValueError(f"{path} holds {len(docs)} YAML documents; a pipeline with Kubernetes settings has 2")
    spec, platform = pipeline_spec_pb2.PipelineSpec(), pipeline_spec_pb2.PlatformSpec()
    try:
        json_format.ParseDict(docs[0], spec)
        json_format.ParseDict(docs[1], platform)
    except json_format.ParseError as err:
        raise ValueError(f"{path} does not parse into KFP's protos: {err}") from err
    return spec, platform


def compile_one(name: str, path: Path) -> Path:
    """Compile pipeline ``name`` (a key of targets()) to ``path`` and validate it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(targets()[name], str(path))
    validate(path)
    return path


def compile_all(out: Path = BUILD) -> list[Path]:
    return [compile_one(name, out / name) for name in targets()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(BUILD))
    args = parser.parse_args(argv)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    for path in compile_all(Path(args.out)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
