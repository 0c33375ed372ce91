"""What the cluster deployment runs besides the steps, against the real local servers: the
bucket set-up Job (genaug.deploy.buckets) on the S3 server and the reconciler sidecar
(genaug.deploy.reconciler) on Triton."""

import json
import subprocess
import sys
import urllib.error
import urllib.request

from genaug.deploy import reconciler
from genaug.services.names import BUCKETS, TRITON_BUCKET, TRITON_PLACEHOLDER_KEY, admin_headers
from genaug.ops import lifecycle
from genaug.services.store import S3Config, Store, promotion_store
from tests.integration.ledger_records import approve, forget
from tests.integration.test_stack import TINY_CONFIG, _s3, _triton, _upload, onnx_files  # noqa: F401 - a fixture

MISSING_FILES = {"config.pbtxt": {"sha256": "0" * 64, "size": 1}, "1/model.onnx": {"sha256": "0" * 64, "size": 1}}


def _buckets(stack, *args, **env):
    admin = stack.keys("admin")  # the Job creates buckets: MinIO's root user on a cluster
    full = {**stack.env, "GENAUG_S3_ACCESS_KEY": admin.access_key, "GENAUG_S3_SECRET_KEY": admin.secret_key, **env}
    return subprocess.run([sys.executable, "-m", "genaug.deploy.buckets", *args], capture_output=True, text=True,
                          env={**full, "PATH": "/usr/bin:/bin"}, timeout=120)


def test_bucket_setup_converges_and_restores_tritons_repository_prefix(stack):
    s3 = _s3(stack, role="admin")
    s3.remove_object(TRITON_BUCKET, TRITON_PLACEHOLDER_KEY)
    first = _buckets(stack)
    assert first.returncode == 0, first.stderr
    assert all(f"bucket {b} ok" in first.stdout for b in BUCKETS) and "wrote s3://genaug-triton/models/README.txt" \
        in first.stdout
    assert s3.stat_object(TRITON_BUCKET, TRITON_PLACEHOLDER_KEY).size > 0
    # The lifecycle rules round-trip through the S3 API (SeaweedFS keeps them as a TTL on new
    # writes under the prefix, so what they expire is not observed here).
    admin = stack.keys("admin")
    store = Store(S3Config(stack.s3_endpoint, admin.access_key, admin.secret_key))
    for bucket in lifecycle.STAGED_BUCKETS:
        assert lifecycle.read(store, bucket) == [{"id": lifecycle.RULE_ID, "status": "Enabled", "prefix": ".staging/",
                                                  "expire_days": 1, "abort_multipart_days": 1}], bucket
    again = _buckets(stack)
    assert again.returncode == 0 and "wrote" not in again.stdout  # idempotent


def test_bucket_setup_names_the_fix_for_wrong_keys_and_for_users_on_a_store_that_is_not_minio(stack):
    wrong = _buckets(stack, GENAUG_S3_SECRET_KEY="not-the-secret")
    assert wrong.returncode == 1 and "refused access key" in wrong.stderr and "Traceback" not in wrong.stderr
    users = _buckets(stack, "--users", GENAUG_PIPELINE_ACCESS_KEY="p", GENAUG_PIPELINE_SECRET_KEY="p" * 8,
                     GENAUG_MLFLOW_ACCESS_KEY="m", GENAUG_MLFLOW_SECRET_KEY="m" * 8,
                     GENAUG_TRITON_ACCESS_KEY="t", GENAUG_TRITON_SECRET_KEY="t" * 8)
    assert users.returncode == 1 and "Traceback" not in users.stderr
    assert "MinIO admin API" in users.stderr and "without --users" in users.stderr
    missing = _buckets(stack, "--users")
    assert missing.returncode == 1 and "GENAUG_PIPELINE_ACCESS_KEY" in missing.stderr


def _get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_reconciler_loads_each_champion_on_its_own_and_stays_ready_when_one_fails(stack, onnx_files):  # noqa: F811
    _upload(stack, "deploy_champion", TINY_CONFIG, onnx_files["tiny"])
    approve("deploy_champion")
    approve("deploy_missing", files=MISSING_FILES)  # in the ledger, not in the repository

    states = reconciler.ModelStates(stale_after_s=60)
    server = reconciler.serve(states, port=0, host="127.0.0.1")
    port = server.server_address[1]
    try:
        assert _get(port, "/readyz")[0] == 503  # no pass yet: the pod stays out of the Service
        lines = []
        assert reconciler.run_pass(states, stack.triton_grpc, stack.admin_key, promotion_store(),
                                   log=lambda line, **_: lines.append(line))
        code, body = _get(port, "/models")
        assert code == 200 and body["models"]["deploy_champion"]["state"] == "serving", body
        assert body["models"]["deploy_missing"]["state"] == "failed" and body["models"]["deploy_missing"]["reason"]
        assert _get(port, "/readyz") == (200, {"ready": True}) and _get(port, "/healthz")[0] == 200
        assert any("deploy_missing: failed" in line for line in lines)
        # A second pass changes nothing, so it logs nothing.
        lines.clear()
        reconciler.run_pass(states, stack.triton_grpc, stack.admin_key, promotion_store(),
                            log=lambda line, **_: lines.append(line))
        assert lines == []
        # Without the admin key nothing can be loaded: every model is reported, none raises.
        fresh = reconciler.ModelStates(stale_after_s=60)
        _triton(stack).unload_model("deploy_champion", headers=admin_headers(stack.admin_key))
        reconciler.run_pass(fresh, stack.triton_grpc, "wrong-key", promotion_store(), log=lambda *a, **k: None)
        assert fresh.snapshot()["models"]["deploy_champion"]["state"] == "failed"
    finally:
        server.shutdown()
        forget("deploy_missing")


def test_reconciler_waits_for_triton_instead_of_recording_a_pass(stack):
    states = reconciler.ModelStates(stale_after_s=60)
    assert not reconciler.run_pass(states, "127.0.0.1:9", stack.admin_key, promotion_store())
    assert not states.ready()


def test_a_ledger_of_an_earlier_release_is_moved_to_one_record_per_model(stack, onnx_files):  # noqa: F811
    """ledger/champions.json (one object for every model) becomes per-model records with the
    files' hashes as found, once; the champion is served as before."""
    import io
    import json as json_module

    from genaug.services.triton import Triton
    from genaug.serving.ledger import Ledger
    from genaug.serving.reconcile import reconcile

    name = "deploy_legacy"
    _upload(stack, name, TINY_CONFIG, onnx_files["tiny"])
    legacy = json_module.dumps({"models": {name: {"version": 1, "previous": None, "history": [1]}}}).encode()
    _s3(stack, role="promote").put_object(TRITON_BUCKET, "ledger/champions.json", io.BytesIO(legacy), len(legacy))
    store = promotion_store()
    report = reconcile(store, Triton(stack.triton_grpc, admin_key=stack.admin_key), models=None)
    state = Ledger(store).state(name)
    assert state["champion"] == 1 and set(state["versions"]["1"]["files"]) == {"config.pbtxt", "1/model.onnx"}
    assert name not in report.failed and _triton(stack).is_model_ready(name, "1")
    assert not store.exists(TRITON_BUCKET, "ledger/champions.json")
    assert store.exists(TRITON_BUCKET, "ledger/champions.migrated.json")
