"""The pipeline compiles with KFP's real compiler into a spec that KFP's protos accept."""

import yaml
from google.protobuf import json_format
from kfp import compiler
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines.genaug_pipeline import genaug_pipeline


def test_compiles_to_valid_pipeline_spec(tmp_path):
    path = tmp_path / "genaug.yaml"
    compiler.Compiler().compile(genaug_pipeline, str(path))
    doc = next(yaml.safe_load_all(path.read_text()))
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(doc, spec)  # unknown or misspelled fields raise here
    params = spec.root.input_definitions.parameters
    assert set(params) == {"dataset", "generator", "classifier", "profile", "seed", "ratio", "margin", "floor",
                           "sample_steps", "eta", "guidance", "fraction"}
    assert params["generator"].default_value.string_value == "dcgan"
    tasks = spec.root.dag.tasks
    assert {"validate-params", "start-tracking", "promote", "prepare-data", "train-generator", "synthesize",
            "train-classifier", "train-classifier-2", "train-classifier-3", "evaluate", "export-onnx",
            "report"} <= set(tasks)
    # CAS: a third classifier trains on the synthetic set alone and feeds the evaluation.
    cas = tasks["train-classifier-3"].inputs.parameters["synthetic_only"].runtime_value.constant
    assert cas.bool_value is True and "train-classifier-3" in tasks["evaluate"].dependent_tasks
    # Nothing may start before the parameters are checked.
    assert "validate-params" in tasks["start-tracking"].dependent_tasks
    assert "start-tracking" in tasks["prepare-data"].dependent_tasks
