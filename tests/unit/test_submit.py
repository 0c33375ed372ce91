"""Submitting and scheduling on Kubeflow Pipelines: the real kfp.Client builds the requests,
a recording stand-in for the KFP REST API (tests/kfp_api_fixture.py) captures them."""

import hashlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from genaug.params import pipeline_arguments
from pipelines import submit
from tests.conftest import REPO
from tests.kfp_api_fixture import FakeKfp, KfpApiServer

PARAMS = ["--dataset", "cifar10", "--generator", "ddim", "--profile", "smoke", "--seed", "3"]
# The run parameters and NODES (1 unless --nodes says otherwise).
EXPECTED = {**pipeline_arguments({"dataset": "cifar10", "generator": "ddim", "profile": "smoke", "seed": "3"}),
            "nodes": 1}


@pytest.fixture
def kfp_api(monkeypatch, tmp_path):
    monkeypatch.setenv("GENAUG_GIT_COMMIT", "abc1234")
    for name in ("KFP_TOKEN", "KF_PIPELINES_SA_TOKEN_PATH", "KF_PIPELINES_UI_ENDPOINT", "KFP_HOST"):
        monkeypatch.delenv(name, raising=False)
    state = FakeKfp()
    with KfpApiServer(state) as (url, _):
        yield url, state, ["--build_dir", str(tmp_path / "build")]


def _params(body: dict) -> dict:
    """The run parameters of a run or recurring run request, as strings."""
    return {k: str(v) for k, v in body["runtime_config"]["parameters"].items()}


def test_submit_uploads_the_compiled_yaml_as_a_version_named_by_commit_and_starts_a_run(kfp_api, capsys):
    url, state, build = kfp_api
    assert submit.main(["run", "--host", url, *PARAMS, *build]) == 0
    uploaded = state.made("POST", "/pipelines/upload")
    assert len(uploaded) == 1 and uploaded[0].query["name"] == "genaug"
    version = state.made("POST", "/pipelines/upload_version")
    compiled = (Path(build[1]) / "genaug.yaml").read_bytes()
    name = f"genaug-abc1234-{hashlib.sha256(compiled).hexdigest()[:12]}"  # the commit and the spec
    assert [v.query["name"] for v in version] == [name]
    # What is uploaded is exactly the file compiled for the KFP UI, a valid pipeline.
    assert version[0].upload == compiled
    docs = list(yaml.safe_load_all(version[0].upload))
    assert docs[0]["pipelineInfo"]["name"] == "genaug" and "kubernetes" in docs[1]["platforms"]
    (run,) = state.made("POST", "/runs")
    assert run.body["display_name"] == "genaug-cifar10-ddim-smoke-s3"
    (pipeline,) = state.pipelines.values()
    version_id = next(v for v, named in pipeline["versions"].items() if named == name)
    assert run.body["pipeline_version_reference"]["pipeline_version_id"] == version_id
    assert "pipeline_spec" not in run.body  # the run points at the uploaded version
    assert _params(run.body) == {k: str(v) for k, v in EXPECTED.items()}
    assert state.experiments[run.body["experiment_id"]]["display_name"] == "genaug"
    run_id = next(iter(state.runs))
    out = capsys.readouterr().out
    assert f"[genaug] run URL: {url}/#/runs/details/{run_id}" in out
    # Which identity the pods use, and how to pick genaug's least-privilege one.
    assert "KFP's default ServiceAccount" in out and "KFP_SERVICE_ACCOUNT=genaug-pipeline" in out
    assert submit.main(["run", "--host", url, *PARAMS, *build, "--service_account", "genaug-pipeline"]) == 0
    assert "the run's pods use ServiceAccount 'genaug-pipeline'" in capsys.readouterr().out


def test_a_second_submit_of_the_same_commit_reuses_pipeline_version_and_experiment(kfp_api):
    url, state, build = kfp_api
    for _ in range(2):
        assert submit.main(["run", "--host", url, *PARAMS, *build]) == 0
    assert len(state.made("POST", "/pipelines/upload")) == 1
    assert len(state.made("POST", "/pipelines/upload_version")) == 1
    assert len(state.made("POST", "/experiments")) == 1
    assert len(state.made("POST", "/runs")) == 2


def test_another_image_or_gpu_setting_at_the_same_commit_is_another_version(kfp_api):
    url, state, build = kfp_api
    for settings in ({}, {"GENAUG_IMAGE": "registry.example/team/genaug:other", "GENAUG_GPU_STEPS": "0"}):
        proc = subprocess.run([sys.executable, "-m", "pipelines.submit", "run", "--host", url, *PARAMS, *build],
                              cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "GENAUG_GIT_COMMIT": "abc1234", **settings})
        assert proc.returncode == 0, proc.stderr
    names = [v.query["name"] for v in state.made("POST", "/pipelines/upload_version")]
    assert len(set(names)) == 2 and all(n.startswith("genaug-abc1234-") for n in names)
    runs = state.made("POST", "/runs")
    assert len({r.body["pipeline_version_reference"]["pipeline_version_id"] for r in runs}) == 2


def test_wait_follows_the_run_to_its_end_and_the_exit_status_says_how_it_ended(kfp_api, capsys):
    url, state, build = kfp_api
    assert submit.main(["run", "--host", url, *PARAMS, *build, "--wait", "1", "--poll_seconds", "0"]) == 0
    out = capsys.readouterr().out
    assert [s for s in ("PENDING", "RUNNING", "SUCCEEDED") if f": {s}" in out] == ["PENDING", "RUNNING", "SUCCEEDED"]
    state.final_state = "FAILED"
    assert submit.main(["run", "--host", url, *PARAMS, *build, "--wait", "1", "--poll_seconds", "0"]) == 1
    captured = capsys.readouterr()
    assert ": FAILED" in captured.out and "train-generator failed" in captured.err


def test_cache_off_sends_the_spec_inline_with_caching_off_in_every_task(kfp_api):
    url, state, build = kfp_api
    assert submit.main(["run", "--host", url, *PARAMS, *build, "--cache", "0"]) == 0
    (run,) = state.made("POST", "/runs")
    assert "pipeline_version_reference" not in run.body or run.body["pipeline_version_reference"] is None
    spec = run.body["pipeline_spec"]["pipeline_spec"] if "pipeline_spec" in run.body["pipeline_spec"] \
        else run.body["pipeline_spec"]
    tasks = []

    def walk(dag):
        for name, task in dag["tasks"].items():
            component = spec["components"][task["componentRef"]["name"]]
            walk(component["dag"]) if "dag" in component else tasks.append((name, task))

    walk(spec["root"]["dag"])
    assert len(tasks) > 10
    assert not [name for name, task in tasks if task.get("cachingOptions", {}).get("enableCache")]


def test_schedule_creates_one_recurring_run_without_catchup_and_replaces_it_when_run_again(kfp_api, capsys):
    url, state, build = kfp_api
    cron = "0 30 2 * * 1-5"
    for _ in range(2):
        assert submit.main(["schedule", "--host", url, *PARAMS, *build, "--cron", cron]) == 0
    (created, again) = state.made("POST", "/recurringruns")
    body = again.body
    assert body["trigger"]["cron_schedule"]["cron"] == cron
    assert body["no_catchup"] is True and str(body["max_concurrency"]) == "1" and body["mode"] == "ENABLE"
    assert body["display_name"] == "genaug-retrain-cifar10-ddim-cnn"
    assert _params(body) == {k: str(v) for k, v in EXPECTED.items()}
    assert body["runtime_config"]["parameters"]["data_version"] == "latest"  # new data is picked up
    assert body["pipeline_version_reference"]["pipeline_id"] in state.pipelines
    assert len(state.made("DELETE", "")) == 1 and len(state.recurring) == 1
    assert "replaced the recurring run genaug-retrain-cifar10-ddim-cnn" in capsys.readouterr().out
    assert submit.main(["unschedule", "--host", url, *PARAMS, *build]) == 0
    assert state.recurring == {}
    assert submit.main(["unschedule", "--host", url, *PARAMS, *build]) == 0
    assert "nothing removed" in capsys.readouterr().out


def test_runs_and_schedules_use_the_service_account_the_manifests_create(kfp_api, monkeypatch):
    url, state, build = kfp_api
    assert submit.main(["run", "--host", url, *PARAMS, *build, "--service_account", "genaug-pipeline"]) == 0
    monkeypatch.setenv("KFP_SERVICE_ACCOUNT", "genaug-pipeline")
    assert submit.main(["schedule", "--host", url, *PARAMS, *build]) == 0
    (run,) = state.made("POST", "/runs")
    (recurring,) = state.made("POST", "/recurringruns")
    assert run.body["service_account"] == recurring.body["service_account"] == "genaug-pipeline"
    # The name is the ServiceAccount in manifests/base/pipeline-access/rbac.yaml.
    rbac = list(yaml.safe_load_all((REPO / "manifests/base/pipeline-access/rbac.yaml").read_text()))
    assert {"ServiceAccount", "genaug-pipeline"} <= {d["kind"] for d in rbac} | {d["metadata"]["name"] for d in rbac}


@pytest.mark.parametrize("cron", ["0 2 * * *", "every day", "", "0 0 2 * * * *"])
def test_a_bad_cron_is_refused_before_any_request(kfp_api, cron, capsys):
    url, state, build = kfp_api
    assert submit.main(["schedule", "--host", url, *PARAMS, *build, "--cron", cron]) == 2
    assert "6-field cron expression" in capsys.readouterr().err
    assert state.requests == []


def test_bad_parameters_are_refused_before_any_request(kfp_api, capsys):
    url, state, build = kfp_api
    assert submit.main(["run", "--host", url, "--generator", "stylegan", *build]) == 2
    assert "stylegan" in capsys.readouterr().err and state.requests == []
    assert submit.main(["run", "--host", url, "--nodes", "0", *build]) == 2
    assert "NODES=0" in capsys.readouterr().err and state.requests == []


def test_nodes_reaches_the_run_as_its_parameter(kfp_api):
    url, state, build = kfp_api
    assert submit.main(["run", "--host", url, *PARAMS, "--nodes", "2", *build]) == 0
    (run,) = state.made("POST", "/runs")
    assert _params(run.body)["nodes"] == "2"


def test_tokens_from_the_environment_or_a_projected_token_file_reach_every_request(kfp_api, monkeypatch,
                                                                                    tmp_path, capsys):
    url, state, build = kfp_api
    state.token = "t0ken"
    assert submit.main(["run", "--host", url, *PARAMS, *build]) == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "KFP_TOKEN" in err and state.made("POST", "/runs") == []
    monkeypatch.setenv("KFP_TOKEN", "t0ken")
    assert submit.main(["run", "--host", url, *PARAMS, *build]) == 0
    monkeypatch.delenv("KFP_TOKEN")
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
    assert submit.main(["schedule", "--host", url, *PARAMS, *build]) == 0
    authorised = [r for r in state.requests if r.headers.get("authorization") == "Bearer t0ken"]
    assert len(state.made("POST", "/runs")) == 1 and len(state.made("POST", "/recurringruns")) == 1
    assert len(authorised) == len(state.requests) - 1  # all but the first, refused probe
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(tmp_path / "missing"))
    assert submit.main(["run", "--host", url, *PARAMS, *build]) == 1
    assert "KF_PIPELINES_SA_TOKEN_PATH" in capsys.readouterr().err


def test_multi_user_kubeflow_needs_the_profile_namespace_and_uses_it(kfp_api, capsys):
    url, state, build = kfp_api
    state.multi_user = True
    assert submit.main(["run", "--host", url, *PARAMS, *build]) == 1
    assert "KFP_NAMESPACE" in capsys.readouterr().err
    assert submit.main(["run", "--host", url, "--namespace", "team-vision", *PARAMS, *build]) == 0
    (created,) = state.made("POST", "/experiments")
    assert created.body["namespace"] == "team-vision"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host, message", [
    ("", "KFP_HOST is not set"),
    ("localhost:8080", "must start with http:// or https://"),
    ("http://127.0.0.1:{closed}", "is unreachable"),
])
def test_a_bad_kfp_host_gives_a_clear_error(host, message, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("KFP_HOST", raising=False)
    host = host.format(closed=_closed_port())
    assert submit.main(["run", "--host", host, "--build_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert message in err and (not host or host in err)


def test_a_host_that_never_answers_fails_after_the_probe_timeout(monkeypatch, capsys, tmp_path):
    # Accepts connections and says nothing: without the probe's timeout this would hang.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    monkeypatch.setattr("pipelines.kfp_connect.PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr("pipelines.kfp_connect.probe.__defaults__", (0.5,))
    host = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        assert submit.main(["run", "--host", host, "--build_dir", str(tmp_path)]) == 1
    finally:
        listener.close()
    assert "is unreachable" in capsys.readouterr().err


def test_a_login_redirect_or_a_non_kfp_server_is_named_as_such(monkeypatch, capsys, tmp_path):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            code = 302 if "login" in self.server.mode else 404
            self.send_response(code)
            self.send_header("Location", "/dex/auth?client_id=kubeflow")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        server.mode = "login"
        assert submit.main(["run", "--host", host, "--build_dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert "HTTP 302" in err and "/dex/auth" in err and "KFP_TOKEN" in err
        server.mode = "other"
        assert submit.main(["run", "--host", host, "--build_dir", str(tmp_path)]) == 1
        assert "not a Kubeflow Pipelines v2 API" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def test_make_pipeline_target_kfp_reports_an_unreachable_host_and_a_bad_target():
    host = f"http://127.0.0.1:{_closed_port()}"
    proc = subprocess.run(["make", "--no-print-directory", "pipeline", "TARGET=kfp", f"KFP_HOST={host}"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and f"KFP_HOST={host} is unreachable" in proc.stderr
    proc = subprocess.run(["make", "--no-print-directory", "pipeline", "TARGET=cluster"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "TARGET=cluster is unknown" in proc.stderr
