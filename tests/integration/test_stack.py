"""The local stack itself: real SeaweedFS, MLflow and Triton started by `python -m genaug.stack`."""

from __future__ import annotations

import io
import json
import secrets
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
import torch
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import urllib3
from minio import Minio
from minio.error import S3Error
from tritonclient.utils import InferenceServerException

from genaug.services.endpoints import read_env_file as read_env
from genaug.services.names import BUCKETS, TRITON_BUCKET, admin_headers
from genaug.services.store import promotion_store
from genaug.stack import admin_key
from tests.integration.ledger_records import approve

MODELS = "models"


def _s3(stack, secret: str | None = None, access: str | None = None, role: str = "pipeline") -> Minio:
    """A client with one of the stack's identities (the steps' by default)."""
    # No retries and short timeouts: a refused request must fail at once, not after backoff.
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=10), retries=False)
    keys = stack.keys(role)
    return Minio(stack.s3_endpoint, access_key=access or keys.access_key,
                 secret_key=secret or keys.secret_key, secure=False, http_client=http)


# -- models -------------------------------------------------------------------------------
class _Tiny(torch.nn.Module):
    """x: float32 [B, 4] -> y: float32 [B, 3]."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.tanh(self.linear(x))


class _Labelled(torch.nn.Module):
    """labels: int64 [B], noise: float32 [B, 4] -> images: uint8 [B, 4] (the generator contract's shapes)."""

    def forward(self, labels, noise):
        return (noise * 10 + labels[:, None].to(torch.float32) * 20).clamp(0, 255).to(torch.uint8)


TINY_CONFIG = """name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ {{ name: "x" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [ {{ name: "y" data_type: TYPE_FP32 dims: [ 3 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

LABELLED_CONFIG = """name: "{name}"
backend: "onnxruntime"
max_batch_size: 8
input [
  {{ name: "labels" data_type: TYPE_INT64 dims: [ 1 ] reshape: {{ shape: [ ] }} }},
  {{ name: "noise" data_type: TYPE_FP32 dims: [ 4 ] }}
]
output [ {{ name: "images" data_type: TYPE_UINT8 dims: [ 4 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """Two ONNX files exported with a dynamic batch dim, in one file each (no .data sidecar)."""
    folder = tmp_path_factory.mktemp("onnx")
    torch.manual_seed(0)
    batch = torch.export.Dim("batch", min=1, max=8)
    tiny, labelled = folder / "tiny.onnx", folder / "labelled.onnx"
    torch.onnx.export(_Tiny().eval(), (torch.randn(2, 4),), str(tiny), input_names=["x"],
                      output_names=["y"], dynamo=True, external_data=False,
                      dynamic_shapes={"x": {0: batch}})
    torch.onnx.export(_Labelled().eval(), (torch.tensor([1, 2]), torch.rand(2, 4)), str(labelled),
                      input_names=["labels", "noise"], output_names=["images"], dynamo=True,
                      external_data=False, dynamic_shapes={"labels": {0: batch}, "noise": {0: batch}})
    return {"tiny": tiny, "labelled": labelled}


def _upload(stack, name: str, config: str, onnx_file, version: int = 1) -> None:
    s3 = _s3(stack, role="promote")
    text = config.format(name=name).encode()
    s3.put_object(TRITON_BUCKET, f"{MODELS}/{name}/config.pbtxt", io.BytesIO(text), len(text))
    s3.fput_object(TRITON_BUCKET, f"{MODELS}/{name}/{version}/model.onnx", str(onnx_file))


def _triton(stack) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(stack.triton_grpc)


def _infer_tiny(triton, name: str, x: np.ndarray) -> np.ndarray:
    tensor = grpcclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    return triton.infer(name, [tensor], client_timeout=60).as_numpy("y")


# -- tests --------------------------------------------------------------------------------
def test_status_reports_every_server_healthy(stack):
    result = stack.launcher("status")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert [line.split()[:2] for line in lines] == [["s3", "healthy"], ["mlflow", "healthy"],
                                                     ["triton", "healthy"]]


def test_secrets_are_private_and_admin_key_is_not_in_stack_env(stack):
    for name in ("stack.env", "admin.env", "s3-credentials.json", "triton-admin.key"):
        assert (stack.state_dir / name).stat().st_mode & 0o777 == 0o600, name
    assert stack.admin_key not in (stack.state_dir / "stack.env").read_text()
    assert admin_key(stack.state_dir) == stack.admin_key


def test_s3_enforces_credentials(stack):
    assert set(BUCKETS) <= {b.name for b in _s3(stack, role="admin").list_buckets()}
    with pytest.raises(S3Error) as wrong_secret:
        next(iter(_s3(stack, secret=stack.secret_key[::-1]).list_objects(BUCKETS[0])))
    assert wrong_secret.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as unknown_key:
        _s3(stack, access="GENAUGNOSUCHKEY00000").put_object(BUCKETS[0], "x", io.BytesIO(b"x"), 1)
    assert unknown_key.value.code == "InvalidAccessKeyId"
    assert "x" not in [o.object_name for o in _s3(stack).list_objects(BUCKETS[0])]


def test_mlflow_run_logs_metric_and_artifact_into_s3(stack, tmp_path):
    import mlflow

    mlflow.set_tracking_uri(stack.mlflow_uri)
    mlflow.set_experiment("genaug-stack-test")
    notes = tmp_path / "notes.txt"
    notes.write_text("served by the stack\n")
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.25, step=3)
        mlflow.log_artifact(str(notes))
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(3, 0.25)]

    s3 = _s3(stack)
    keys = [o.object_name for o in s3.list_objects("genaug-mlflow", recursive=True)]
    stored = [k for k in keys if k.endswith(f"{run.info.run_id}/artifacts/notes.txt")]
    assert len(stored) == 1, keys
    body = s3.get_object("genaug-mlflow", stored[0])
    assert body.read() == b"served by the stack\n"
    body.close()


def test_triton_serves_an_onnx_model_from_the_s3_repository(stack, onnx_files):
    name = "stack_tiny"
    _upload(stack, name, TINY_CONFIG, onnx_files["tiny"])
    triton = _triton(stack)
    triton.load_model(name, headers=admin_headers(stack.admin_key))
    assert triton.is_model_ready(name, "1")

    reference = ort.InferenceSession(str(onnx_files["tiny"]))
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
        served = _infer_tiny(triton, name, x)
        assert served.shape == (batch, 3)
        np.testing.assert_array_equal(served, reference.run(None, {"x": x})[0])


def test_adapter_reshapes_inputs_and_casts_outputs(stack, onnx_files):
    name = "stack_labelled"
    _upload(stack, name, LABELLED_CONFIG, onnx_files["labelled"])
    triton = _triton(stack)
    triton.load_model(name, headers=admin_headers(stack.admin_key))

    labels = np.array([[0], [3], [9]], dtype=np.int64)  # dims [1] per item, as clients send it
    noise = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    inputs = [grpcclient.InferInput("labels", [3, 1], "INT64"), grpcclient.InferInput("noise", [3, 4], "FP32")]
    inputs[0].set_data_from_numpy(labels)
    inputs[1].set_data_from_numpy(noise)
    served = triton.infer(name, inputs, client_timeout=60).as_numpy("images")

    expected = ort.InferenceSession(str(onnx_files["labelled"])).run(
        None, {"labels": labels[:, 0], "noise": noise})[0]
    assert served.dtype == np.uint8 and served.shape == (3, 4)
    np.testing.assert_array_equal(served, expected)


def test_concurrent_requests_to_a_batching_model_get_their_own_rows(stack, onnx_files):
    """With dynamic batching the adapter runs requests that arrive together as one batch."""
    name = "stack_batched"
    config = TINY_CONFIG.replace("instance_group", "dynamic_batching {{ max_queue_delay_microseconds: 200000 }}\n"
                                 "instance_group")
    _upload(stack, name, config, onnx_files["tiny"])
    _triton(stack).load_model(name, headers=admin_headers(stack.admin_key))

    rng = np.random.default_rng(7)
    batches = [rng.standard_normal((rows, 4)).astype(np.float32) for rows in (1, 3, 2)]
    with ThreadPoolExecutor(len(batches)) as pool:  # one client per thread: gRPC channels are per client
        served = list(pool.map(lambda x: _infer_tiny(_triton(stack), name, x), batches))
    reference = ort.InferenceSession(str(onnx_files["tiny"]))
    for x, y in zip(batches, served):
        np.testing.assert_array_equal(y, reference.run(None, {"x": x})[0])


def test_every_admin_like_api_needs_the_admin_key_and_the_rest_stays_open(stack, onnx_files):
    triton, key = _triton(stack), admin_headers(stack.admin_key)
    restricted = {"statistics": lambda h: triton.get_inference_statistics(headers=h),
                  "trace": lambda h: triton.get_trace_settings(headers=h),
                  "logging": lambda h: triton.get_log_settings(headers=h),
                  "shared-memory": lambda h: triton.get_system_shared_memory_status(headers=h),
                  "model-repository": lambda h: triton.get_model_repository_index(headers=h)}
    for api, call in restricted.items():
        for headers in (None, admin_headers("not-the-key")):
            with pytest.raises(InferenceServerException, match="restricted"):
                call(headers)
        call(key)  # the admin key opens it
    http = httpclient.InferenceServerClient(stack.triton_http)
    for call in (http.get_inference_statistics, http.get_log_settings, http.get_trace_settings):
        with pytest.raises(InferenceServerException, match="restricted"):
            call()
    # Open to every client: health, metadata, model config and inference.
    name = "stack_open_apis"
    _upload(stack, name, TINY_CONFIG, onnx_files["tiny"])
    triton.load_model(name, headers=key)
    assert triton.is_server_live() and triton.is_model_ready(name)
    assert triton.get_model_metadata(name).name == name and triton.get_model_config(name).config.name == name
    assert _infer_tiny(triton, name, np.ones((1, 4), np.float32)).shape == (1, 3)
    triton.unload_model(name, headers=key)


def test_model_repository_api_needs_the_admin_key(stack):
    triton = _triton(stack)
    for headers in (None, admin_headers("not-the-key")):
        with pytest.raises(InferenceServerException, match="restricted"):
            triton.get_model_repository_index(headers=headers)
        with pytest.raises(InferenceServerException, match="restricted"):
            triton.unload_model("stack_tiny", headers=headers)
    index = triton.get_model_repository_index(headers=admin_headers(stack.admin_key), as_json=True)
    assert isinstance(index.get("models", []), list)

    http = httpclient.InferenceServerClient(stack.triton_http)
    with pytest.raises(InferenceServerException, match="restricted"):
        http.get_model_repository_index()
    assert isinstance(http.get_model_repository_index(headers=admin_headers(stack.admin_key, "http")), list)
    # Inference stays open to everyone.
    assert triton.is_server_ready()


def test_restart_reloads_the_champions_in_the_ledger(stack, onnx_files):
    """down + up on the same state folder: Triton starts empty, reconcile loads the ledger's models."""
    name = "stack_champion"
    _upload(stack, name, TINY_CONFIG, onnx_files["tiny"])
    # Added to whatever other tests of the session promoted, which must survive too.
    approve(name)
    missing = {"config.pbtxt": {"sha256": "0" * 64, "size": 1}, "1/model.onnx": {"sha256": "0" * 64, "size": 1}}
    approve("stack_not_in_repository", files=missing)

    before = stack.pids()
    down = stack.launcher("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert list((stack.state_dir / "run").glob("*.pid")) == []
    for server, pid in before.items():
        assert not stack.alive(pid), f"{server} PID {pid} (or its group) survived `down`"
    assert stack.launcher("status").returncode != 0

    up = stack.up()
    assert up.returncode == 0, up.stdout + up.stderr  # a failing ledger entry does not fail `up`
    assert f"repaired {name}: loaded v1" in up.stdout
    assert "FAILED stack_not_in_repository" in up.stdout
    assert set(stack.pids().values()).isdisjoint(before.values())
    # Ports are sticky per state folder, so the session's exported endpoints stay valid.
    assert read_env(stack.state_dir / "stack.env") == stack.env

    triton = _triton(stack)
    assert triton.is_model_ready(name, "1")
    x = np.ones((2, 4), dtype=np.float32)
    reference = ort.InferenceSession(str(onnx_files["tiny"])).run(None, {"x": x})[0]
    np.testing.assert_array_equal(_infer_tiny(triton, name, x), reference)
    # Models that the ledger does not list were not brought back.
    assert not triton.is_model_ready("stack_labelled")
    promotion_store().delete(TRITON_BUCKET, "ledger/models/stack_not_in_repository.json")



def test_each_identity_reaches_only_its_buckets(stack):
    """Only the promote identity can change what Triton serves; a step's keys cannot touch it."""
    pipeline, promote, triton = _s3(stack), _s3(stack, role="promote"), _s3(stack, role="triton")
    key, body = f"least-privilege/{secrets.token_hex(4)}", b"x"

    def refused(call):
        with pytest.raises(S3Error) as err:
            call()
        assert err.value.code == "AccessDenied", err.value.code

    refused(lambda: pipeline.put_object(TRITON_BUCKET, "models/evil/config.pbtxt", io.BytesIO(body), 1))
    refused(lambda: pipeline.remove_object(TRITON_BUCKET, "models/README.txt"))
    refused(lambda: pipeline.get_object(TRITON_BUCKET, "models/README.txt"))
    refused(lambda: promote.put_object(BUCKETS[0], key, io.BytesIO(body), 1))
    refused(lambda: triton.put_object(TRITON_BUCKET, key, io.BytesIO(body), 1))
    triton.get_object(TRITON_BUCKET, "models/README.txt").read()  # Triton reads its repository
    promote.put_object(TRITON_BUCKET, key, io.BytesIO(body), 1)
    promote.remove_object(TRITON_BUCKET, key)
    pipeline.put_object("genaug-checkpoints", key, io.BytesIO(body), 1)
    pipeline.remove_object("genaug-checkpoints", key)
    from genaug.services.store import Store, StoreError

    with pytest.raises(StoreError, match="refused access key"):
        Store().put_bytes(TRITON_BUCKET, "models/evil/config.pbtxt", b'backend: "python"')


def test_only_the_s3_api_answers_reads_and_writes(stack):
    """SeaweedFS's master, volume, filer and admin ports refuse plain HTTP reads and writes."""
    import json as json_module
    import urllib.error
    import urllib.request

    ports = json_module.loads((stack.state_dir / "ports.json").read_text())
    for name in ("weed_master", "weed_volume", "weed_filer", "weed_admin"):
        for method, path in (("POST", "/submit"), ("PUT", "/buckets/genaug-triton/models/evil"),
                             ("POST", "/3,01637037d6"), ("GET", "/buckets/genaug-triton/models/README.txt"),
                             ("GET", "/dir/assign"), ("DELETE", "/buckets/genaug-triton/models/README.txt")):
            request = urllib.request.Request(f"http://127.0.0.1:{ports[name]}{path}", data=b"x" if method != "GET"
                                             else None, method=method)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as err:
                status = err.code
            except (urllib.error.URLError, ConnectionError):
                status = "closed"
            assert status == "closed" or status >= 400, f"{name} answered {method} {path} with {status}"
    assert _s3(stack, role="triton").get_object(TRITON_BUCKET, "models/README.txt").read()  # S3 still serves


def test_many_buckets_take_writes_whatever_the_free_disk(stack):
    """Every bucket is a SeaweedFS collection with a volume of its own. Sized from free disk
    (1 GiB a volume), the server refused the Nth bucket's first write with HTTP 500 on a disk
    with fewer than N GB free; its slots are set (genaug.stack.seaweed.VOLUME_SLOTS)."""
    s3 = _s3(stack, role="admin")
    buckets = [f"genaug-test-slots-{i:02d}" for i in range(40)]
    try:
        for bucket in buckets:
            if not s3.bucket_exists(bucket):
                s3.make_bucket(bucket)
            s3.put_object(bucket, "one", io.BytesIO(b"1"), 1)
    finally:
        for bucket in buckets:
            if s3.bucket_exists(bucket):
                for item in s3.list_objects(bucket, recursive=True):
                    s3.remove_object(bucket, item.object_name)
                s3.remove_bucket(bucket)
