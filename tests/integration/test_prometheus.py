"""Monitoring, tested for real (issue 23): the session's Prometheus (tests/prometheus_fixture.py)
scrapes the local Triton and the reconciler's /metrics, and its HTTP API answers what the
client did and what the ledger says."""

import time

import numpy as np
import pytest

from genaug.deploy import reconciler
from genaug.services.store import promotion_store
from genaug.serving.ledger import Ledger
from tests.integration.ledger_records import approve, forget
from tests.integration.test_stack import TINY_CONFIG, _infer_tiny, _triton, _upload, onnx_files  # noqa: F401 - a fixture
from tests.prometheus_fixture import rule_spec

NAME = "prom_tiny"
# Not 1, so that the reconciler's gauge can only match by reading the ledger.
VERSION = 2
REQUESTS = 7


@pytest.fixture
def reconciler_endpoint(stack, prometheus):
    """The reconciler's HTTP endpoint (genaug.deploy.reconciler.serve) on a free loopback
    port, scraped as job ``reconciler`` while the test runs; yields its ModelStates, which
    the test's passes fill."""
    states = reconciler.ModelStates(stale_after_s=60)
    server = reconciler.serve(states, port=0, host="127.0.0.1")
    prometheus.scrape("reconciler", f"127.0.0.1:{server.server_address[1]}")
    try:
        yield states
    finally:
        prometheus.scrape("reconciler", None)
        server.shutdown()
        server.server_close()


def test_prometheus_counts_the_clients_inferences_and_shows_the_ledgers_champion(
        stack, prometheus, reconciler_endpoint, onnx_files):  # noqa: F811
    _upload(stack, NAME, TINY_CONFIG, onnx_files["tiny"], version=VERSION)
    approve(NAME, version=VERSION)
    triton = _triton(stack)
    try:
        # One real pass: the reconciler loads the ledger's champion into Triton.
        assert reconciler.run_pass(reconciler_endpoint, stack.triton_grpc, stack.admin_key, promotion_store(),
                                   log=lambda *a, **k: None)
        assert reconciler_endpoint.snapshot()["models"][NAME]["state"] == "serving"
        loaded = time.time()
        served = f'nv_inference_request_success{{model="{NAME}",version="{VERSION}"}}'
        before = prometheus.newest_sample(served, after_s=loaded)  # 0 unless the model served earlier

        x = np.ones((1, 4), np.float32)
        for _ in range(REQUESTS):
            assert _infer_tiny(triton, NAME, x).shape == (1, 3)
        done = time.time()

        assert prometheus.newest_sample(served, after_s=done) - before == REQUESTS
        champion = Ledger(promotion_store()).state(NAME)["champion"]
        assert champion == VERSION
        assert prometheus.newest_sample(f'genaug_champion_version{{model="{NAME}"}}', after_s=done) == champion
        assert prometheus.newest_sample(f'genaug_model_ready{{model="{NAME}"}}', after_s=done) == 1
        for job in ("triton", "reconciler"):
            assert prometheus.newest_sample(f'up{{job="{job}"}}', after_s=done) == 1, job
    finally:
        forget(NAME)
        triton.close()


def test_prometheus_loads_and_evaluates_the_monitoring_components_rules(prometheus):
    """The PrometheusRule's groups, loaded as a rule file, all evaluate without an error."""
    expected = {rule.get("alert") or rule.get("record") for group in rule_spec()["groups"] for rule in group["rules"]}
    rules = prometheus.rules()
    assert {rule["name"] for rule in rules} == expected
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
