"""End to end: the augmentation experiment through KFP's local runner, as `make experiment`
runs it (smoke profile: one fraction, two classifiers, two ratios, two seeds), with two
generator seeds, so that the effect's interval counts the generator's variance."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp import compiler
from kfp.pipeline_spec import pipeline_spec_pb2

from tests.conftest import REPO
from tests.smoke_fixture import REAL_DATA, pipeline_env as _env

pytestmark = pytest.mark.e2e


def test_experiment_compiles_to_one_flat_parallel_for_over_configurations(tmp_path):
    from pipelines.experiment_pipeline import experiment_pipeline

    path = tmp_path / "experiment.yaml"
    compiler.Compiler().compile(experiment_pipeline, str(path))
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(next(yaml.safe_load_all(path.read_text())), spec)
    params = spec.root.input_definitions.parameters
    assert {"ratios", "seeds", "classifiers", "fractions", "generator_seeds", "filter_threshold"} <= set(params)
    loops = {name: t for name, t in spec.root.dag.tasks.items() if t.WhichOneof("iterator")}
    assert len(loops) == 2  # the arms (one generator per fraction and generator seed) and the configurations
    inner = {name: spec.components[t.component_ref.name].dag.tasks for name, t in loops.items()}
    config_loop = next(n for n, tasks in inner.items() if "run-config" in tasks)
    assert set(inner[config_loop]) == {"run-config"}
    assert "summarize-experiment" in spec.root.dag.tasks


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, stack):
    if not REAL_DATA:
        pytest.skip("real Fashion-MNIST is missing: run `make test` as root or set GENAUG_DATA_DIR")
    runs = tmp_path_factory.mktemp("runs")
    proc = subprocess.run([sys.executable, "-m", "pipelines.run_experiment", "--profile", "smoke",
                           "--generator_seeds", "0,1", "--runs", str(runs)], cwd=REPO, capture_output=True, text=True,
                          env=_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    path = Path(proc.stdout.strip().splitlines()[-1])
    return proc, json.loads(path.read_text())


def test_experiment_prints_the_table_with_intervals(experiment):
    proc, summary = experiment
    rows = summary["table"]
    # smoke: 2 classifiers x ratios {0, 0.5} x 2 seeds, one fraction.
    assert {(r["classifier"], r["ratio"]) for r in rows} == {(c, r) for c in ("cnn", "shallow_mlp") for r in (0, 0.5)}
    for row in rows:
        assert row["n_seeds"] == 2 and 0.1 < row["accuracy_mean"] <= 1.0
        if row["ratio"] > 0:  # 2 classifier seeds x 2 generator seeds, against the same 2 baselines
            assert row["n_pairs"] == 4 and row["delta_low"] <= row["delta_mean"] <= row["delta_high"]
            assert row["interval_over"] == "generator seeds" and row["n_generators"] == 2
            assert row["generator_spread"] is not None
    assert "Δ vs real (paired)" in proc.stdout and "95% CI" in proc.stdout and "(baseline)" in proc.stdout
    assert "between generators" in proc.stdout
    arms = summary["generators"]
    assert [(a["fraction"], a["generator_seed"]) for a in arms] == [(0.5, 0), (0.5, 1)]
    assert arms[0]["generator_sha256"] != arms[1]["generator_sha256"]  # two generators, not one twice
    for arm in arms:
        assert arm["fid"]["clean"] is not None and arm["kid"] is not None
        assert "stand-in" in arm["network"]["name"] and 0 <= arm["cas"] <= 1
    assert "FID[clean]" in proc.stdout and "CAS" in proc.stdout and "generator seed 1" in proc.stdout


def test_every_number_traces_to_its_mlflow_run(experiment):
    import mlflow

    _, summary = experiment
    client = mlflow.MlflowClient()
    by_run = {r["mlflow_run_id"]: r for r in summary["results"]}
    for row in summary["table"]:
        for run_id in row["mlflow_run_ids"]:
            run = client.get_run(run_id)
            assert run.data.metrics["test_accuracy"] == pytest.approx(by_run[run_id]["accuracy"])
            assert run.data.tags["mlflow.parentRunId"] == summary["mlflow_parent_run_id"]
    parent = client.get_run(summary["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["genaug.kind"] == "experiment"
    assert parent.data.metrics["acc_mean/cnn/f0.5/r0"] == pytest.approx(summary["table"][0]["accuracy_mean"])
