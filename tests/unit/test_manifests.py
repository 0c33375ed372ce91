"""The cluster manifests: every overlay builds with the kubectl this machine image ships,
validates strictly against the Kubernetes schemas, and holds what a trustworthy deployment
needs (resources, probes, non-root, pinned images, no committed secret), wired to the names
the compiled pipeline and the code use."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from components import settings
from genaug.services import mlflow_access
from pipelines import placement
from tests import monitoring_crds
from tests.conftest import REPO

MANIFESTS = REPO / "manifests"
OVERLAYS = ("gpu", "local-cpu", "byo-s3")
K8S_VERSION = "1.32.0"  # the kubectl here; the schemas of later releases are checked by the CLI test
KUBECTL = shutil.which("kubectl")
# kubernetes-validate has no schema for these (the Prometheus Operator's CRDs): they are
# checked against tests/monitoring_crds.py instead, and only they are skipped.
CRD_KINDS = frozenset(monitoring_crds.SPECS)


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, MANIFESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render, make_secrets = _module("render"), _module("make_secrets")


def _kubectl() -> str:
    if KUBECTL is None:
        pytest.fail("kubectl is not on PATH: these tests build the manifests with `kubectl kustomize` "
                    "(kubectl >= 1.27; this machine image ships 1.32 at /usr/bin/kubectl). Install it.", pytrace=False)
    return KUBECTL


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A copy of manifests/ without anyone's secrets, with env files made by make_secrets."""
    root = tmp_path_factory.mktemp("m") / "manifests"
    shutil.copytree(MANIFESTS, root, ignore=shutil.ignore_patterns("*.env", "build", "__pycache__"))
    assert make_secrets.main(["--root", str(root)]) == 0
    return root


def _build(folder):
    proc = subprocess.run([_kubectl(), "kustomize", str(folder)], capture_output=True, text=True)
    assert proc.returncode == 0, f"kubectl kustomize {folder}: {proc.stderr}"
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture(scope="module")
def rendered(tree):
    """Overlay name -> list of rendered objects."""
    return {overlay: _build(tree / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def rendered_monitoring(tree):
    """Overlay name -> its objects with components/monitoring on, as `make manifests MONITORING=1` builds it."""
    out = {}
    for overlay in OVERLAYS:
        folder = tree / "build" / f"{overlay}-monitoring"
        folder.mkdir(parents=True)
        (folder / "kustomization.yaml").write_text(render.kustomization(overlay, "r/genaug-cpu:1", monitoring=True))
        out[overlay] = _build(folder)
    return out


def _template(obj) -> dict:
    """The pod template of a workload (a CronJob's is its Job's)."""
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec["template"]


def _pods(objects):
    """(object, pod spec) of every workload."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
            yield obj, _template(obj)["spec"]


def _containers(objects):
    for obj, pod in _pods(objects):
        for c in pod.get("initContainers", []) + pod["containers"]:
            yield obj, pod, c


def _find(objects, kind, name):
    (obj,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return obj


def _validate_strictly(overlay, objects):
    """Every object against the Kubernetes schemas; the CRD kinds against their typed model."""
    for obj in objects:
        where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CRD_KINDS:
            try:
                monitoring_crds.validate(obj)
            except monitoring_crds.SchemaError as err:
                pytest.fail(f"{where}: {err}")
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{where}: {err.message}")


def test_every_overlay_validates_strictly_against_the_kubernetes_schemas(rendered):
    for overlay, objects in rendered.items():
        assert not [o for o in objects if o["kind"] in CRD_KINDS], f"{overlay}: monitoring is off by default"
        _validate_strictly(overlay, objects)


def test_every_overlay_with_monitoring_validates_strictly_and_only_adds_the_component(rendered, rendered_monitoring):
    for overlay, objects in rendered_monitoring.items():
        _validate_strictly(overlay, objects)
        keys = {(o["kind"], o["metadata"]["name"]) for o in objects}
        added = keys - {(o["kind"], o["metadata"]["name"]) for o in rendered[overlay]}
        assert added == {("ServiceMonitor", "triton"), ("PrometheusRule", "genaug"),
                         ("ConfigMap", "genaug-grafana-dashboard")}, overlay
        dashboard = _find(objects, "ConfigMap", "genaug-grafana-dashboard")
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1" and "genaug.json" in dashboard["data"]
        # The ServiceMonitor's ports are named ports of the Service it selects, whose targets
        # are the containers' named ports; a metrics client may reach both.
        monitor, service = _find(objects, "ServiceMonitor", "triton"), _find(objects, "Service", "triton")
        assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"] == "genaug"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        pod = _find(objects, "Deployment", "triton")["spec"]["template"]["spec"]
        container_ports = {p["name"]: p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
        scraped = set()
        for endpoint in monitor["spec"]["endpoints"]:
            target = ports[endpoint["port"]]["targetPort"]
            scraped.add(container_ports[target])
        assert scraped == {8002, 8081}, overlay
        rule = _find(objects, "NetworkPolicy", "triton-clients")["spec"]["ingress"][1]
        assert rule["from"][0]["podSelector"]["matchLabels"] == {"genaug.io/metrics-client": "true"}
        assert {p["port"] for p in rule["ports"]} == scraped
    # Off, the reconciler's port is neither in the Service nor open to anyone.
    assert 8081 not in {p["port"] for p in _find(rendered["gpu"], "Service", "triton")["spec"]["ports"]}


def test_a_monitoring_object_with_an_unknown_or_mistyped_field_is_rejected(rendered_monitoring):
    """The typed model rejects what the operator would (so the test above can fail)."""
    import copy

    monitor = _find(rendered_monitoring["gpu"], "ServiceMonitor", "triton")
    rule = _find(rendered_monitoring["gpu"], "PrometheusRule", "genaug")
    for obj, change, match in (
            (monitor, lambda o: o["spec"]["endpoints"][0].update(intervall="30s"), r"unknown field.*intervall"),
            (monitor, lambda o: o["spec"].pop("selector"), "required field 'selector'"),
            (monitor, lambda o: o["spec"]["endpoints"][0].update(interval="30 s"), "not a duration"),
            (rule, lambda o: o["spec"]["groups"][0]["rules"][0].update({"for": 10}), "10 is not a duration"),
            (rule, lambda o: o["spec"]["groups"][0]["rules"][0].update(labels={"severity": 1}), "expected str"),
            (rule, lambda o: o["spec"]["groups"][0]["rules"][0].update(record="x:y"), "exactly one of record"),
            (rule, lambda o: o["spec"]["groups"].append(o["spec"]["groups"][0]), "group names repeat")):
        bad = copy.deepcopy(obj)
        change(bad)
        with pytest.raises(monitoring_crds.SchemaError, match=match):
            monitoring_crds.validate(bad)


def test_the_gpu_overlay_passes_the_kubernetes_validate_cli_in_strict_mode(tree, tmp_path):
    """The issue's own check: kubectl kustomize manifests/overlays/gpu | kubernetes-validate --strict."""
    text = subprocess.run([_kubectl(), "kustomize", str(tree / "overlays" / "gpu")], capture_output=True,
                          text=True, check=True).stdout
    (tmp_path / "gpu.yaml").write_text(text)
    cli = REPO / ".venv" / "bin" / "kubernetes-validate"
    cli = str(cli) if cli.exists() else shutil.which("kubernetes-validate")
    proc = subprocess.run([cli, "--strict", str(tmp_path / "gpu.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ERROR" not in proc.stdout and "WARN" not in proc.stdout
    assert proc.stdout.count("passed for resource") == text.count("\nkind: ") + text.startswith("kind: ")


def test_a_validation_error_is_caught():
    """The validator rejects an unknown field in strict mode (so the tests above can fail)."""
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_every_container_has_resources_probes_where_it_serves_and_runs_non_root(rendered):
    for overlay, objects in rendered.items():
        for obj, pod, c in _containers(objects):
            where = f"{overlay}: {obj['kind']}/{obj['metadata']['name']}/{c['name']}"
            res = c.get("resources", {})
            assert {"cpu", "memory"} <= set(res.get("requests", {})) and {"cpu", "memory"} <= set(res.get("limits", {})), where
            if c.get("ports"):
                assert "readinessProbe" in c and "livenessProbe" in c, f"{where} serves but has no probes"
            sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", psc.get("runAsUser", 0)) > 0, where
            assert sc.get("allowPrivilegeEscalation") is False and sc.get("capabilities") == {"drop": ["ALL"]}, where
            assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, where
            assert pod.get("automountServiceAccountToken") is False, f"{where}: needs no Kubernetes API token"


def test_images_are_pinned_and_the_genaug_image_agrees_with_the_compiled_pipeline(rendered):
    for overlay, objects in rendered.items():
        for obj, _, c in _containers(objects):
            name, _, tag = c["image"].rpartition(":")
            assert name and tag and tag != "latest" and re.search(r"\d", tag), f"{overlay}: {c['image']} is not pinned"
        genaug = {c["image"] for _, _, c in _containers(objects) if "/genaug" in c["image"]}
        # The committed manifests use the components' default CPU image.
        default = re.search(r'CPU_IMAGE = os.environ.get\("GENAUG_CPU_IMAGE", "([^"]+)"\)',
                            (REPO / "components/settings.py").read_text()).group(1)
        assert genaug == {default}, overlay


def test_make_manifests_and_make_compile_put_the_same_image_in_both(tree, tmp_path):
    image = "registry.example/team/genaug-cpu:abc123def456"
    (tree / "build").mkdir(exist_ok=True)
    (tree / "build" / "gpu.yaml").write_text("an older rendering, world-readable")
    os.chmod(tree / "build" / "gpu.yaml", 0o644)
    rendered_file = render.render("gpu", image, root=tree)
    assert rendered_file.stat().st_mode & 0o777 == 0o600  # it holds every Secret
    objects = [d for d in yaml.safe_load_all(rendered_file.read_text()) if d]
    in_manifests = {c["image"] for _, _, c in _containers(objects) if "genaug-cpu" in c["image"]}
    env = {**os.environ, "GENAUG_CPU_IMAGE": image, "GENAUG_IMAGE": "registry.example/team/genaug:abc123def456"}
    subprocess.run([sys.executable, "-m", "pipelines.compile", "--out", str(tmp_path)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    spec = next(yaml.safe_load_all((tmp_path / "genaug.yaml").read_text()))
    in_pipeline = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert in_manifests == {image} and image in in_pipeline
    assert in_pipeline == {image, "registry.example/team/genaug:abc123def456"}


def test_make_manifests_says_what_to_do_when_kubectl_secrets_or_the_overlay_are_missing(tree, tmp_path,
                                                                                      monkeypatch):
    with pytest.raises(render.RenderError, match="not one of byo-s3, gpu, local-cpu"):
        render.render("prod", "r/genaug-cpu:1", root=tree)
    with pytest.raises(render.RenderError, match="has no tag"):
        render.render("gpu", "r/genaug-cpu", root=tree)
    bare = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, bare, ignore=shutil.ignore_patterns("*.env", "build"))
    with pytest.raises(render.RenderError, match=r"secret env files missing: .*minio-root.env.*make secrets"):
        render.render("gpu", "r/genaug-cpu:1", root=bare)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(render.RenderError, match="kubectl not found on PATH; install kubectl"):
        render.render("gpu", "r/genaug-cpu:1", root=tree)


def test_no_secret_value_is_committed(rendered):
    tracked = subprocess.run(["git", "ls-files", "manifests"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert not [f for f in tracked if f.endswith(".env")], "an env file with secrets is tracked"
    for path in MANIFESTS.rglob("kustomization.yaml"):
        doc = yaml.safe_load(path.read_text())
        for gen in doc.get("secretGenerator", []):
            assert "literals" not in gen, f"{path}: secret {gen['name']} has literal values"
            for env in gen["envs"]:
                example = path.parent / f"{env}.example"
                assert example.is_file(), f"{path}: {env} has no committed {example.name}"
                ignored = subprocess.run(["git", "check-ignore", "-q", str(path.parent / env)], cwd=REPO)
                assert ignored.returncode == 0, f"{path.parent / env} is not git-ignored"
    for f in tracked:
        if f.endswith(".yaml"):
            for doc in yaml.safe_load_all((REPO / f).read_text()):
                assert not (doc and doc.get("kind") == "Secret"), f"{f} commits a Secret"


def test_make_secrets_keeps_shared_values_equal_never_overwrites_and_flags_hand_edits(tmp_path, monkeypatch):
    root = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, root, ignore=shutil.ignore_patterns("*.env", "build"))
    assert make_secrets.main(["--root", str(root)]) == 0
    read = make_secrets.read_env
    users = read(root / "base/services/secrets/minio-users.env")
    pipeline = read(root / "base/pipeline-access/secrets/genaug-s3.env")
    assert (pipeline["GENAUG_S3_ACCESS_KEY"], pipeline["GENAUG_S3_SECRET_KEY"]) == \
        (users["GENAUG_PIPELINE_ACCESS_KEY"], users["GENAUG_PIPELINE_SECRET_KEY"])
    assert read(root / "base/services/secrets/triton-admin.env") == \
        read(root / "base/pipeline-access/secrets/genaug-triton-admin.env")
    # MLflow: the set-up Job's passwords are the steps' and promote's; names are the code's.
    auth = read(root / "base/services/secrets/mlflow-auth.env")
    for role in ("pipeline", "promote"):
        suffix = "" if role == "pipeline" else "-promote"
        login = read(root / f"base/pipeline-access/secrets/genaug-mlflow{suffix}.env")
        key = f"GENAUG_MLFLOW_{role.upper()}"
        assert login[f"{key}_PASSWORD"] == auth[f"{key}_PASSWORD"] and len(auth[f"{key}_PASSWORD"]) == 32
        assert login[f"{key}_USERNAME"] == mlflow_access.USERNAMES[role]
    assert len({auth[k] for k in auth}) == len(auth)  # every secret its own value
    assert len({users["GENAUG_PIPELINE_SECRET_KEY"], users["GENAUG_MLFLOW_SECRET_KEY"],
                users["GENAUG_TRITON_SECRET_KEY"]}) == 3 and len(users["GENAUG_TRITON_SECRET_KEY"]) == 32
    assert oct((root / "base/services/secrets/minio-users.env").stat().st_mode & 0o777) == "0o600"
    before = (root / "base/services/secrets/minio-users.env").read_text()
    assert make_secrets.main(["--root", str(root)]) == 0
    assert (root / "base/services/secrets/minio-users.env").read_text() == before
    # A hand edit that breaks the pairing is named, with both files.
    (root / "base/pipeline-access/secrets/genaug-s3.env").write_text("GENAUG_S3_ACCESS_KEY=x\nGENAUG_S3_SECRET_KEY=y\n")
    problems = make_secrets.disagreements(root)
    assert any("genaug-s3.env" in p and "minio-users.env" in p for p in problems)
    assert make_secrets.main(["--root", str(root)]) == 1
    # Bring your own S3: the store's pair for every client; nothing else from the environment.
    byo = tmp_path / "byo"
    shutil.copytree(MANIFESTS, byo, ignore=shutil.ignore_patterns("*.env", "build"))
    monkeypatch.setenv("BYO_S3_ACCESS_KEY", "kfp-store-key")
    monkeypatch.setenv("BYO_S3_SECRET_KEY", "kfp-store-secret")
    monkeypatch.setenv("GENAUG_TRITON_ADMIN_KEY", "the-local-stacks-key")
    assert make_secrets.main(["--root", str(byo)]) == 0
    users = read(byo / "base/services/secrets/minio-users.env")
    assert {users[f"GENAUG_{c}_SECRET_KEY"] for c in ("PIPELINE", "MLFLOW", "TRITON")} == {"kfp-store-secret"}
    assert read(byo / "base/services/secrets/triton-admin.env")["GENAUG_TRITON_ADMIN_KEY"] != "the-local-stacks-key"


def test_the_pipelines_configmap_and_secrets_have_the_names_and_keys_the_compiled_tasks_read(rendered):
    for overlay, objects in rendered.items():
        config = _find(objects, "ConfigMap", settings.CONFIG_MAP)
        assert config["metadata"]["namespace"] == "kubeflow"
        assert set(placement.SERVICE_ENV.values()) == set(config["data"]), overlay
        s3 = _find(objects, "Secret", settings.S3_SECRET)
        assert set(placement.SECRET_ENV.values()) == set(s3["data"]) and s3["metadata"]["namespace"] == "kubeflow"
        admin = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == settings.TRITON_ADMIN_SECRET]
        assert [o["metadata"]["namespace"] for o in admin] == ["kubeflow"], overlay
        # Every endpoint names a Service that this overlay deploys, on a port it exposes.
        services = {(o["metadata"]["name"], o["metadata"]["namespace"]): {p["port"] for p in o["spec"]["ports"]}
                    for o in objects if o["kind"] == "Service"}
        for key, value in config["data"].items():
            m = re.match(r"^(?:https?://)?([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)$", value)
            if m is None:
                continue
            name, ns, port = m.group(1), m.group(2), int(m.group(3))
            if overlay == "byo-s3" and key == "GENAUG_S3_ENDPOINT":
                assert ns == "kubeflow"  # the store KFP ships, not ours
                continue
            assert port in services.get((name, ns), set()), f"{overlay}: {key}={value} names no such Service/port"


def test_only_declared_clients_reach_minio_and_triton(rendered):
    objects = rendered["gpu"]
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    s3_clients = {obj["metadata"]["name"] for obj, pod in _pods(objects)
                  if _template(obj)["metadata"]["labels"].get("genaug.io/s3-client") == "true"}
    assert s3_clients == {"mlflow", "triton", "genaug-minio-setup", "genaug-backup", "genaug-gc"}
    minio_from = policies["minio-clients"]["spec"]["ingress"][0]["from"]
    assert minio_from == [{"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["genaug", "kubeflow"]}]},
        "podSelector": {"matchLabels": {"genaug.io/s3-client": "true"}}}]
    # ... and the namespace the pipeline's pods run in is one of those.
    pipeline_ns = _find(objects, "ServiceAccount", "genaug-pipeline")["metadata"]["namespace"]
    assert pipeline_ns in minio_from[0]["namespaceSelector"]["matchExpressions"][0]["values"]
    triton_rules = policies["triton-clients"]["spec"]["ingress"]
    assert triton_rules[0]["from"][0]["podSelector"]["matchLabels"] == {"genaug.io/triton-client": "true"}
    assert {p["port"] for p in triton_rules[0]["ports"]} == {8000, 8001}
    assert policies["postgres-clients"]["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "genaug-backup"}}},
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "genaug-gc"}}}]
    # The pipeline's tasks carry these labels (tests/unit/test_pipeline_compile.py checks the YAML).
    assert {"genaug.io/s3-client", "genaug.io/triton-client", "genaug.io/mlflow-client"} == set(settings.CLIENT_LABELS)


def test_triton_runs_like_the_local_stack_in_explicit_mode_with_its_repository_in_minio(rendered):
    from genaug.services.names import ADMIN_HEADER, RESTRICTED_APIS, TRITON_BUCKET, TRITON_MODELS_PREFIX

    for overlay, objects in rendered.items():
        deploy = _find(objects, "Deployment", "triton")
        pod = deploy["spec"]["template"]["spec"]
        triton = next(c for c in pod["containers"] if c["name"] == "triton")
        args = triton["args"]
        assert f"--model-repository=s3://$(GENAUG_S3_ENDPOINT)/{TRITON_BUCKET}/{TRITON_MODELS_PREFIX}" in args
        for flag in ("--model-control-mode=explicit", "--exit-on-error=false", "--strict-readiness=false",
                     f"--grpc-restricted-protocol={','.join(RESTRICTED_APIS)}:{ADMIN_HEADER}=$(GENAUG_TRITON_ADMIN_KEY)",
                     f"--http-restricted-api={','.join(RESTRICTED_APIS)}:{ADMIN_HEADER}=$(GENAUG_TRITON_ADMIN_KEY)"):
            assert flag in args, f"{overlay}: {flag}"
        env = {e["name"]: e for e in triton["env"]}
        assert "AWS_ENDPOINT_URL" not in env  # ignored by Triton's AWS SDK; the endpoint is in the URL
        assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["key"] == "GENAUG_TRITON_ACCESS_KEY"  # read-only
        assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        reconciler = next(c for c in pod["containers"] if c["name"] == "reconciler")
        assert reconciler["command"][:3] == ["python", "-m", "genaug.deploy.reconciler"]
        renv = {e["name"]: e for e in reconciler["env"]}
        if overlay != "byo-s3":  # a store KFP ships has one pair for every client
            assert renv["GENAUG_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "GENAUG_PROMOTE_ACCESS_KEY"
        assert reconciler["readinessProbe"]["httpGet"]["path"] == "/readyz"
        service = _find(objects, "Service", "triton")
        assert {(p["name"], p["port"]) for p in service["spec"]["ports"]} >= {("grpc", 8001), ("http", 8000)}
        gpus = triton["resources"].get("limits", {}).get("nvidia.com/gpu")
        assert (gpus == 1) == (overlay == "gpu"), f"{overlay}: nvidia.com/gpu = {gpus}"
    # The same modes as the local stack's server, whose behaviour the integration tests check.
    import inspect

    from genaug.stack.triton_server import TritonServer

    local = inspect.getsource(TritonServer._flags)
    for flag in ("--model-control-mode=explicit", "--exit-on-error=false", "--strict-readiness=false",
                 "--grpc-restricted-protocol=", "--http-restricted-api="):
        assert flag in local


def test_the_pipeline_role_grants_only_what_kfp_argo_and_the_trainjob_task_call():
    """Each rule is an API call of KFP 2.17.0's driver/launcher, Argo's executor (rbac.yaml
    cites the source) or genaug's TrainJob task (tests/unit/test_trainjob_step.py checks that
    it makes exactly these); nothing may watch or patch pods, or use wildcards."""
    (role,) = [d for d in yaml.safe_load_all((REPO / "manifests/base/pipeline-access/rbac.yaml").read_text())
               if d and d["kind"] == "Role"]
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): (set(r["verbs"]), r.get("resourceNames"))
             for r in role["rules"]}
    assert rules == {
        (("",), ("configmaps",)): ({"get"}, ["kfp-launcher"]),
        (("",), ("secrets",)): ({"get"}, ["mlpipeline-minio-artifact"]),
        (("",), ("pods",)): ({"get", "list"}, None),
        (("",), ("pods/log",)): ({"get"}, None),
        (("argoproj.io",), ("workflows",)): ({"get"}, None),
        (("argoproj.io",), ("workflowtaskresults",)): ({"create", "patch"}, None),
        (("trainer.kubeflow.org",), ("trainjobs",)): ({"create", "get", "watch", "delete"}, None),
    }


def test_only_the_promote_user_can_write_the_model_repository():
    from genaug.deploy.buckets import CLIENTS, WRITE
    from genaug.services.names import TRITON_BUCKET

    writers = [c.name for c in CLIENTS if TRITON_BUCKET in c.buckets and set(WRITE) <= set(c.actions)]
    readers = [c.name for c in CLIENTS if TRITON_BUCKET in c.buckets]
    assert writers == ["promote"] and sorted(readers) == ["backup", "promote", "triton"]


def test_mlflow_answers_its_service_names_and_port_forwards_and_nothing_else(rendered):
    """--allowed-hosts, checked with MLflow's own host matching."""
    from mlflow.server.security_utils import is_allowed_host_header

    mlflow = next(c for c in _find(rendered["gpu"], "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"])
    (flag,) = [a for a in mlflow["args"] if a.startswith("--allowed-hosts=")]
    allowed = flag.removeprefix("--allowed-hosts=").split(",")
    uri = _find(rendered["gpu"], "ConfigMap", settings.CONFIG_MAP)["data"]["MLFLOW_TRACKING_URI"]
    for host in (uri.removeprefix("http://"), "mlflow.genaug.svc:5000", "mlflow:5000", "localhost:5000",
                 "127.0.0.1:15000"):
        assert is_allowed_host_header(allowed, host), host
    for host in ("evil.example.com", "mlflow.genaug.svc.cluster.local.evil.example:5000", "10.0.0.7:5000"):
        assert not is_allowed_host_header(allowed, host), host
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("postgresql+psycopg://")
    assert "--backend-store-uri" not in " ".join(mlflow["args"])  # the password stays out of `ps`
    assert "--artifacts-destination=s3://genaug-mlflow" in mlflow["args"] and "--serve-artifacts" in mlflow["args"]


def test_bring_your_own_s3_deploys_no_minio_and_creates_no_users(rendered):
    objects = rendered["byo-s3"]
    minio = {(o["kind"], o["metadata"]["name"].rsplit("-", 1)[0] if o["kind"] == "Secret" else o["metadata"]["name"])
             for o in objects if "minio" in o["metadata"]["name"]}
    assert minio == {("Job", "genaug-minio-setup"), ("Secret", "genaug-minio-users")}
    job = _find(objects, "Job", "genaug-minio-setup")["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["python", "-m", "genaug.deploy.buckets"]
    gpu_job = _find(rendered["gpu"], "Job", "genaug-minio-setup")["spec"]["template"]["spec"]["containers"][0]
    assert gpu_job["command"][-1] == "--users"


def test_the_retrain_period_patch_in_docs_monitoring_md_works(tree):
    """The overlay patch docs/monitoring.md gives for another CRON changes the dead-man's switch's period."""
    text = (REPO / "docs" / "monitoring.md").read_text()
    section = text[text.index("### The schedule's period"):]
    patch = section[section.index("```yaml\n") + len("```yaml\n"):section.index("```\n", section.index("```yaml"))]
    folder = tree / "build" / "gpu-weekly"
    folder.mkdir(parents=True)
    (folder / "kustomization.yaml").write_text(render.kustomization("gpu", "r/genaug-cpu:1", monitoring=True) + patch)
    rule = _find(_build(folder), "PrometheusRule", "genaug")["spec"]["groups"][1]["rules"][0]
    assert rule == {"record": "genaug:retrain_period_seconds", "expr": "vector(604800)"}


def test_the_backup_cronjob_has_its_own_identity_and_its_credentials_only_from_secrets(rendered):
    from genaug.deploy.buckets import CLIENTS, READ
    from genaug.ops.databases import DUMP_FLAGS
    from genaug.ops.targets import ACCESS_ENV, SECRET_ENV

    for overlay, objects in rendered.items():
        cron = _find(objects, "CronJob", "genaug-backup")
        assert cron["spec"]["concurrencyPolicy"] == "Forbid", overlay
        pod = _template(cron)["spec"]
        assert pod["serviceAccountName"] == "genaug-backup"
        assert _find(objects, "ServiceAccount", "genaug-backup")["automountServiceAccountToken"] is False
        # No Role or binding names it: it never calls the Kubernetes API.
        assert not [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
                    and any(s.get("name") == "genaug-backup" for s in o.get("subjects", []))]
        (dump,) = pod["initContainers"]
        (main,) = pod["containers"]
        assert dump["command"][-1].count(" ".join(DUMP_FLAGS)) == 2 and " -w " in dump["command"][-1]
        assert main["command"][:4] == ["python", "-m", "genaug.cli", "backup"] and "--keep" in main["command"]
        for container in (dump, main):
            for var in container["env"]:
                secretish = re.search(r"PASSWORD|SECRET|ACCESS_KEY", var["name"])
                assert not (secretish and "value" in var), f"{overlay}: {var['name']} is inline"
        env = {v["name"]: v for v in main["env"]}
        for name in (ACCESS_ENV, SECRET_ENV):
            assert env[name]["valueFrom"]["secretKeyRef"]["name"].rsplit("-", 1)[0] == "genaug-backup-target"
        if overlay != "byo-s3":
            assert env["GENAUG_S3_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "GENAUG_BACKUP_ACCESS_KEY"
    (backup,) = [c for c in CLIENTS if c.name == "backup"]
    assert set(backup.actions) == set(READ)  # it reads the buckets, and can change nothing


def test_the_gc_cronjob_sweeps_as_the_two_identities_whose_data_it_holds_with_secrets_by_reference(rendered):
    for overlay, objects in rendered.items():
        cron = _find(objects, "CronJob", "genaug-gc")
        assert cron["spec"]["concurrencyPolicy"] == "Forbid", overlay
        pod = _template(cron)["spec"]
        assert pod["serviceAccountName"] == "genaug-gc" and pod["automountServiceAccountToken"] is False
        assert not [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")
                    and any(s.get("name") == "genaug-gc" for s in o.get("subjects", []))]
        (main,) = pod["containers"]
        assert main["command"] == ["python", "-m", "genaug.cli", "gc", "--apply"]  # the policy's own defaults
        env = {v["name"]: v for v in main["env"]}
        keys = {name: env[name]["valueFrom"]["secretKeyRef"]["key"] for name in env
                if "secretKeyRef" in env[name].get("valueFrom", {})}
        assert keys["GENAUG_S3_ACCESS_KEY"] == "GENAUG_PIPELINE_ACCESS_KEY"
        assert keys["GENAUG_PROMOTE_S3_ACCESS_KEY"] == "GENAUG_PROMOTE_ACCESS_KEY"
        assert keys["GENAUG_PROMOTE_MLFLOW_PASSWORD"] == "GENAUG_MLFLOW_PROMOTE_PASSWORD"
        for name, var in env.items():
            assert not (re.search(r"PASSWORD|SECRET|ACCESS_KEY", name) and "value" in var), f"{overlay}: {name}"
        # The database URI is composed from the Secret's variables; no literal credential.
        uri = env["GENAUG_MLFLOW_BACKEND_URI"]["value"]
        assert re.match(r"postgresql\+psycopg://\$\(POSTGRES_USER\):\$\(POSTGRES_PASSWORD\)@[a-z.]+:5432/\$\(POSTGRES_DB\)$",
                        uri), uri
