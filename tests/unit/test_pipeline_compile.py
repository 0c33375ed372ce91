"""The pipelines compile with KFP's real compiler into the files people upload in the KFP UI:
valid protos, described parameters, GPU placement, secrets by reference, the caching policy."""

import json
import os
import subprocess
import sys

import pytest
import yaml

from pipelines.compile import compile_all, validate
from tests.conftest import REPO

HEAVY = {"train-generator", "synthesize", "train-classifier", "evaluate-generator", "fid-reference",
         "filter-synthetic", "run-config"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    return {p.name: (p, *validate(p)) for p in compile_all(out)}


def _docs(path):
    """(pipeline spec, kubernetes deployment spec) of a compiled file, as plain dicts."""
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def all_tasks(spec, dag=None):
    """(name, task) of every container task, inside loops and exit handlers too."""
    dag = spec.root.dag if dag is None else dag
    for name, task in dag.tasks.items():
        comp = spec.components[task.component_ref.name]
        if comp.WhichOneof("implementation") == "dag":
            yield from all_tasks(spec, comp.dag)
        else:
            yield name, task


def test_both_pipelines_parse_into_pipeline_and_platform_specs(compiled):
    assert set(compiled) == {"genaug.yaml", "genaug-experiment.yaml"}
    spec = compiled["genaug.yaml"][1]
    params = spec.root.input_definitions.parameters
    assert set(params) == {"dataset", "generator", "classifier", "profile", "seed", "ratio", "margin", "floor",
                           "sample_steps", "eta", "guidance", "fraction", "data_version", "data_source", "resolution",
                           "synth", "synth_target", "gate_metric", "gan_early_stop", "accelerator_type",
                           "accelerator_count", "nodes", "trainer_runtime", "trainjob_timeout_hours"}
    assert params["generator"].default_value.string_value == "dcgan"
    assert params["data_version"].default_value.string_value == "latest"
    assert params["data_source"].default_value.string_value == ""
    tasks = dict(all_tasks(spec))
    assert {"resolve-config", "start-tracking", "data-version", "promote-generator", "promote-classifier",
            "prepare-data", "train-generator", "synthesize", "train-classifier", "train-classifier-2",
            "train-classifier-3", "evaluate", "evaluate-generator", "export-generator", "export-classifier",
            "report", "record-final-status"} <= set(tasks)
    # CAS: a third classifier trains on the synthetic set alone and feeds the evaluation.
    cas = tasks["train-classifier-3"].inputs.parameters["synthetic_only"].runtime_value.constant
    assert cas.bool_value is True and "train-classifier-3" in tasks["evaluate"].dependent_tasks
    # Nothing may start before the parameters are checked.
    assert "resolve-config" in tasks["start-tracking"].dependent_tasks
    assert "resolve-config" in tasks["data-version"].dependent_tasks
    # The KFP run view shows each promotion verdict (a model no better than its champion says so).
    for role in ("generator", "classifier"):
        promote = spec.components[tasks[f"promote-{role}"].component_ref.name]
        assert promote.output_definitions.artifacts["verdict"].artifact_type.schema_title == "system.Markdown"
    # The generator is exported and promoted without waiting for the classifiers trained on
    # synthetic images: on 2 cores that took the export of an unrolled sampler (80 s) off the
    # end of a DDIM run.
    assert set(tasks["export-generator"].dependent_tasks) == {"condition-branches-2", "start-tracking"}  # the generator
    assert set(tasks["promote-generator"].dependent_tasks) == {"export-generator", "train-classifier",
                                                                "prepare-data", "start-tracking", "resolve-config"}
    assert "train-classifier-2" in tasks["export-classifier"].dependent_tasks


def test_an_exit_handler_records_the_final_status_even_when_a_step_fails(compiled):
    spec = compiled["genaug.yaml"][1]
    root = spec.root.dag.tasks
    assert set(root) == {"exit-handler-1", "record-final-status"}
    final = root["record-final-status"]
    assert final.trigger_policy.strategy == final.trigger_policy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED
    assert final.inputs.parameters["status"].task_final_status.producer_task == "exit-handler-1"
    body = {name for name, _ in all_tasks(spec, spec.components[root["exit-handler-1"].component_ref.name].dag)}
    assert {"resolve-config", "train-generator", "promote-generator", "promote-classifier", "report"} <= body


def test_prepare_data_is_keyed_by_its_data_section_and_data_version_never_by_run(compiled):
    for name, (_, spec, _) in compiled.items():
        tasks = dict(all_tasks(spec))
        prepare = tasks["prepare-data"]
        assert set(prepare.inputs.parameters) == {"section", "data_version"}, name
        assert prepare.inputs.parameters["data_version"].task_output_parameter.producer_task == "data-version"
        section = prepare.inputs.parameters["section"].task_output_parameter.producer_task
        assert section == ("resolve-config" if name == "genaug.yaml" else "arm-setup"), name
        # Nothing that differs per run reaches its inputs, directly or through a producer: the
        # section's producer takes only the run's parameters (or the arm's options and fraction).
        assert set(prepare.dependent_tasks) == {"data-version", section}, name
        assert "pipeline_run_id" not in str(tasks[section].inputs), name
        # The version step itself runs in every run (it looks at the data as it is now, and
        # logs it to the run's MLflow run): only its output, the version, keys prepare_data.
        version = tasks["data-version"]
        assert not version.caching_options.enable_cache, name
        # An unknown dataset or a bad source fails at once: no retries with minutes of back-off.
        assert not version.HasField("retry_policy") and not prepare.HasField("retry_policy"), name
        assert tasks["train-generator"].retry_policy.max_retry_count == 2, name
        given = {k: v.component_input_parameter for k, v in version.inputs.parameters.items() if k != "parent_run_id"}
        assert given == {"dataset": "pipelinechannel--dataset", "requested": "pipelinechannel--data_version",
                         **({"source": "pipelinechannel--data_source"} if name == "genaug.yaml" else {})}, name
        assert version.inputs.parameters["parent_run_id"].task_output_parameter.producer_task \
            == ("start-tracking" if name == "genaug.yaml" else "parent-run"), name


def test_every_parameter_has_a_description_and_a_default(compiled):
    for name, (_, spec, _) in compiled.items():
        for pname, p in spec.root.input_definitions.parameters.items():
            assert p.description.strip(), f"{name}: parameter {pname} has no description"
            assert p.is_optional and p.HasField("default_value"), f"{name}: parameter {pname} has no default"


def test_heavy_steps_request_gpus_on_gpu_nodes_and_every_step_has_resources(compiled):
    for name, (path, _, _) in compiled.items():
        spec, executors = _docs(path)
        for label, executor in spec["deploymentSpec"]["executors"].items():
            container = executor["container"]
            resources = container["resources"]
            assert {"resourceCpuLimit", "resourceCpuRequest", "resourceMemoryLimit", "resourceMemoryRequest"} \
                <= set(resources), f"{name}: {label} lacks cpu/memory requests or limits"
            step = label.removeprefix("exec-").rstrip("-0123456789")
            if step in HEAVY:
                expected = ("{{$.inputs.parameters['pipelinechannel--accelerator_type']}}"
                            if name == "genaug.yaml" else "nvidia.com/gpu")  # the experiment: compile-time
                assert resources["accelerator"]["resourceType"] == expected, label
                k8s = executors[label]
                assert k8s["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}
                assert k8s["tolerations"][0]["key"] == "nvidia.com/gpu"
            else:
                assert "accelerator" not in resources, f"{name}: {label} should not hold a GPU"


def test_service_endpoints_and_keys_come_from_the_cluster_never_from_the_yaml(tmp_path):
    secret = "s3cr3t-value-that-must-not-leak"
    env = {**os.environ, "GENAUG_S3_SECRET_KEY": secret, "GENAUG_S3_ACCESS_KEY": "access-that-must-not-leak",
           "MLFLOW_TRACKING_URI": "http://10.1.2.3:5000", "GENAUG_TRITON_ADMIN_KEY": "admin-must-not-leak",
           "GENAUG_IMAGE": "registry.example/genaug:abc123", "GENAUG_CPU_IMAGE": "registry.example/genaug-cpu:abc123"}
    subprocess.run([sys.executable, "-m", "pipelines.compile", "--out", str(tmp_path)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    for path in tmp_path.glob("*.yaml"):
        text = path.read_text()
        for value in (secret, "access-that-must-not-leak", "10.1.2.3", "admin-must-not-leak"):
            assert value not in text, f"{value} leaked into {path.name}"
        validate(path)
        spec, executors = _docs(path)
        for label, executor in spec["deploymentSpec"]["executors"].items():
            gpu = label.removeprefix("exec-").rstrip("-0123456789") in HEAVY
            assert executor["container"]["image"] == f"registry.example/genaug{'' if gpu else '-cpu'}:abc123", label
        for label, k8s in executors.items():
            if "secretAsEnv" in k8s:
                # Every step but promote: the steps' identity, without access to genaug-triton.
                want = "genaug-s3-promote" if label.startswith("exec-promote") else "genaug-s3"
                assert k8s["secretAsEnv"][0]["secretName"] == want, label
                assert k8s["configMapAsEnv"][0]["configMapName"] == "genaug-config"
        if path.name == "genaug.yaml":
            for role in ("generator", "classifier"):
                promote = executors[f"exec-promote-{role}"]
                assert {s["secretName"] for s in promote["secretAsEnv"]} == {
                    "genaug-s3-promote", "genaug-mlflow-promote", "genaug-triton-admin"}
                keys = {k["secretKey"]: k["envVar"] for s in promote["secretAsEnv"] for k in s["keyToEnv"]}
                assert keys["GENAUG_PROMOTE_ACCESS_KEY"] == "GENAUG_S3_ACCESS_KEY"
                assert keys["GENAUG_MLFLOW_PROMOTE_PASSWORD"] == "MLFLOW_TRACKING_PASSWORD"
            for secret in ("triton-admin", "-promote"):  # what may change the served models: promote only
                assert not any(secret in s["secretName"] for label, k8s in executors.items()
                               if not label.startswith("exec-promote") for s in k8s.get("secretAsEnv", []))
        # MLflow's pipeline account for every other step that talks to the services.
        for label, k8s in executors.items():
            if "configMapAsEnv" in k8s and not label.startswith("exec-promote"):
                mlflow = [s for s in k8s["secretAsEnv"] if s["secretName"] == "genaug-mlflow"]
                assert mlflow and {k["envVar"] for k in mlflow[0]["keyToEnv"]} == {
                    "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}, label
        # A DATA_SOURCE on another server: its keys reach the step that snapshots it, and no other.
        holders = {label for label, k8s in executors.items() for s in k8s.get("secretAsEnv", [])
                   if s["secretName"] == "genaug-source-s3"}
        assert holders == {"exec-data-version"}, holders
        (source,) = [s for s in executors["exec-data-version"]["secretAsEnv"] if s["secretName"] == "genaug-source-s3"]
        assert source["optional"] is True
        assert {k["secretKey"] for k in source["keyToEnv"]} >= {"GENAUG_SOURCE_S3_ACCESS_KEY",
                                                                 "GENAUG_SOURCE_S3_SECRET_KEY"}


def test_every_task_runs_as_the_images_non_root_user_and_service_clients_carry_the_policy_labels(compiled):
    """The uid is the one images/install.sh creates; the labels are what the NetworkPolicies
    in manifests/ admit to MinIO, MLflow and Triton."""
    policies = list(yaml.safe_load_all((REPO / "manifests/base/services/network-policies.yaml").read_text()))
    admitted = {k for p in policies for rule in p["spec"].get("ingress", []) for peer in rule["from"]
                for k, v in peer.get("podSelector", {}).get("matchLabels", {}).items() if k.startswith("genaug.io/")}
    assert "UID_GENAUG=10001" in (REPO / "images/install.sh").read_text()
    for name, (path, _, _) in compiled.items():
        spec, executors = _docs(path)
        for label in spec["deploymentSpec"]["executors"]:
            k8s = executors[label]
            assert k8s["securityContext"] == {"runAsUser": "10001", "runAsGroup": "10001", "runAsNonRoot": True}, label
            if "secretAsEnv" in k8s:
                labels = set(k8s["podMetadata"]["labels"])
                assert labels == {"genaug.io/s3-client", "genaug.io/mlflow-client", "genaug.io/triton-client"}, label
                assert labels <= admitted, f"no NetworkPolicy admits {labels - admitted}"


def test_a_cluster_without_gpus_gets_no_gpu_request_and_only_the_cpu_image(tmp_path):
    env = {**os.environ, "GENAUG_GPU_STEPS": "0", "GENAUG_CPU_IMAGE": "registry.example/genaug-cpu:abc123"}
    subprocess.run([sys.executable, "-m", "pipelines.compile", "--out", str(tmp_path)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    for path in tmp_path.glob("*.yaml"):
        spec, executors = _docs(path)
        for label, executor in spec["deploymentSpec"]["executors"].items():
            assert executor["container"]["image"] == "registry.example/genaug-cpu:abc123", label
            assert "accelerator" not in executor["container"]["resources"], label
            assert "nodeSelector" not in executors.get(label, {}), label


def test_only_prepare_data_may_come_from_the_cache(compiled):
    for name, (_, spec, _) in compiled.items():
        cached = {t for t, task in all_tasks(spec) if task.caching_options.enable_cache}
        assert cached == {"prepare-data"}, f"{name}: cacheable tasks {cached}"


def test_compiling_twice_gives_identical_bytes(tmp_path):
    for out in ("a", "b"):
        subprocess.run([sys.executable, "-m", "pipelines.compile", "--out", str(tmp_path / out)], cwd=REPO,
                       check=True, capture_output=True)
    for name in ("genaug.yaml", "genaug-experiment.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_step_without_a_placement_policy_fails_the_compile(monkeypatch):
    from pipelines import placement

    monkeypatch.delitem(placement.POLICY, "report")
    from kfp import dsl

    from pipelines.genaug_pipeline import genaug_pipeline

    with pytest.raises(KeyError, match="no placement policy for component 'report'"):
        dsl.pipeline(name="rebuilt")(genaug_pipeline.pipeline_func)  # builds the DAG again


def test_build_folder_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "pipelines/build/genaug.yaml"], cwd=REPO, capture_output=True)
    assert ignored.returncode == 0


def test_the_compiled_parameters_are_as_recorded(compiled):
    """Names, types, defaults and descriptions of both pipelines' parameters, as recorded
    before issue 19's refactor (python -m tests.golden.recorded parameters)."""
    from tests.golden.recorded import PARAMETERS, pipeline_parameters

    (folder,) = {path.parent for path, *_ in compiled.values()}
    assert pipeline_parameters(folder) == json.loads(PARAMETERS.read_text())


@pytest.mark.parametrize("profile", ["smoke", "quick", "full"])
def test_the_data_section_passes_between_tasks_at_every_profile(profile, tmp_path, offline_env):
    """KFP passes no nulls between tasks: the sections that resolve_config and an experiment's
    arm hand prepare_data (quick's max_train is unset, every profile's resolution) must
    convert, and read back as the same section."""
    from types import SimpleNamespace

    from kfp.compiler.pipeline_spec_builder import to_protobuf_value

    from components import steps
    from genaug.params import resolve
    from genaug.sections import DataConfig

    from components import experiment

    options = SimpleNamespace(path=str(tmp_path / "options.json"), metadata={})
    section = steps.resolve_config.python_func(parameters={"profile": profile}, options=options)
    arm_options = SimpleNamespace(path=str(tmp_path / "arm_options.json"))
    arm, seed = experiment.arm_setup.python_func(options=options, arm={"fraction": 0.5, "generator_seed": 2},
                                                 arm_options=arm_options)
    for value in (section, arm):
        to_protobuf_value(value)
    assert DataConfig.coerce(section) == resolve({"profile": profile}).data
    assert DataConfig.coerce(arm) == resolve({"profile": profile, "fraction": "0.5"}).data
    from genaug.params import load_options

    assert seed == 2 and load_options(arm_options.path) == resolve({"profile": profile, "fraction": "0.5",
                                                                    "seed": 2})


def test_training_steps_take_every_gpu_of_their_pod_with_an_in_memory_dev_shm(tmp_path):
    """GENAUG_ACCELERATOR_COUNT=8 make compile: train_generator and train_classifier ask for 8
    GPUs (torchrun runs one process on each) and mount a RAM-backed /dev/shm; synthesis and the
    metrics keep one GPU."""
    env = {**os.environ, "GENAUG_ACCELERATOR_COUNT": "8"}
    subprocess.run([sys.executable, "-m", "pipelines.compile", "--out", str(tmp_path)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    for path in sorted(tmp_path.glob("*.yaml")):
        validate(path)
        spec, executors = _docs(path)
        assert spec["root"]["inputDefinitions"]["parameters"].get("accelerator_count", {}).get(
            "defaultValue", 8) == 8, path.name
        for label, executor in spec["deploymentSpec"]["executors"].items():
            step = label.removeprefix("exec-").rstrip("-0123456789")
            if step not in HEAVY:
                continue
            count = str(executor["container"]["resources"]["accelerator"].get("resourceCount", ""))
            mounts = executors.get(label, {}).get("emptyDirMounts", [])
            if step in ("train-generator", "train-classifier"):
                assert count in ("8", "{{$.inputs.parameters['pipelinechannel--accelerator_count']}}"), (label, count)
                assert mounts == [{"volumeName": "dshm", "mountPath": "/dev/shm", "medium": "Memory",
                                   "sizeLimit": "8Gi"}], (label, mounts)
            else:
                assert count == "1" and not mounts, (label, count, mounts)


def test_nodes_chooses_between_the_pod_and_a_trainjob_task_that_holds_no_gpu(compiled):
    """NODES=1 trains in the pipeline's pod; NODES > 1 a CPU task runs a Kubeflow Trainer
    TrainJob. Both branches feed the same generator artifact (dsl.OneOf) to the rest."""
    path, spec, _ = compiled["genaug.yaml"]
    branches = {}
    for comp in spec.components.values():
        for task in (comp.dag.tasks.values() if comp.WhichOneof("implementation") == "dag" else ()):
            if task.trigger_policy.condition:
                body = spec.components[task.component_ref.name].dag.tasks
                branches[task.trigger_policy.condition] = set(body)
    assert branches == {"int(inputs.parameter_values['pipelinechannel--nodes']) == 1": {"train-generator"},
                        "!(int(inputs.parameter_values['pipelinechannel--nodes']) == 1)": {"train-generator-trainjob"}}
    params = spec.root.input_definitions.parameters
    assert params["nodes"].default_value.number_value == 1
    assert params["trainer_runtime"].default_value.string_value == "torch-distributed"
    doc, executors = _docs(path)
    (label,) = [k for k in doc["deploymentSpec"]["executors"] if k.startswith("exec-train-generator-trainjob")]
    assert "accelerator" not in doc["deploymentSpec"]["executors"][label]["container"]["resources"]
    assert "nodeSelector" not in executors[label] and "tolerations" not in executors[label]
    assert executors[label]["secretAsEnv"]  # S3 keys for the hand-off, by reference
    # The exit handler knows NODES, to delete the TrainJob of a run that failed or was cancelled.
    final = spec.root.dag.tasks["record-final-status"]
    assert final.inputs.parameters["nodes"].component_input_parameter == "nodes"
    # Both name the TrainJob by the run's UUID: a display name repeats from run to run.
    for task in (final, dict(all_tasks(spec))["train-generator-trainjob"]):
        assert task.inputs.parameters["run_uid"].runtime_value.constant.string_value == "{{$.pipeline_job_uuid}}"
    # The rest of the run takes the generator of whichever branch ran.
    tasks = dict(all_tasks(spec))
    assert tasks["synthesize"].inputs.artifacts["model"].task_output_artifact.producer_task.startswith(
        "condition-branches")
