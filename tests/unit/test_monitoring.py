"""Metrics and alerts (issue 23): the reconciler's /metrics page, and the monitoring
component's rules and dashboard checked and run by promtool (Debian's, `make prometheus`)."""

import json
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from genaug.deploy import metrics, reconciler
from genaug.serving.reconcile import ReconcileReport
from tests.conftest import REPO
from tests.prometheus_fixture import rule_spec as prometheus_rule_spec

COMPONENT = REPO / "manifests" / "components" / "monitoring"
RULE_TESTS = REPO / "tests" / "unit" / "rules"
# Metric names the rules and the dashboard may use besides the reconciler's: Triton's
# (its docs/user_guide/metrics.md) and Argo's controller counter (its docs/metrics.md).
TRITON = {"nv_inference_request_success", "nv_inference_request_failure", "nv_inference_request_duration_us",
          "nv_inference_queue_duration_us", "nv_inference_pending_request_count"}
ARGO = {"argo_workflows_total_count"}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not on PATH: `make prometheus` installs Debian's prometheus package (as root), "
                    "or put Prometheus' promtool on PATH.", pytrace=False)
    return path


def _run(*args, cwd=None, stdin=None):
    return subprocess.run([_promtool(), *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rule_spec():
    return prometheus_rule_spec()


def _alerts(spec) -> set[str]:
    return {r["alert"] for g in spec["groups"] for r in g["rules"] if "alert" in r}


def _rule_folder(tmp_path, spec):
    """The rule tests next to rules.yaml, the PrometheusRule's spec as a plain rule file."""
    for test in RULE_TESTS.glob("*.yaml"):
        shutil.copy(test, tmp_path / test.name)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    return sorted(t.name for t in RULE_TESTS.glob("*.yaml"))


# -- the reconciler's /metrics ------------------------------------------------------------

def _event(decision, time):
    return {"decision": decision, "time": time, "model": "m"}


def test_the_last_retrain_is_the_newest_decision_that_reached_promotion():
    record = {"champion": 3, "events": [_event("promoted", "2026-12-01T02:10:00.000000Z"),
                                        _event("rejected", "2026-12-02T02:10:30.500000Z"),
                                        _event("failed", "2026-12-03T02:11:00.000000Z"),
                                        _event("rolled_back", "2026-12-03T09:00:00.000000Z")]}
    facts = metrics.facts_of(record)
    assert facts == metrics.LedgerFacts(champion=3, last_retrain_s=1796177430.5, last_decision="rejected")
    assert metrics.facts_of({"champion": None, "events": [_event("failed", "2026-12-03T02:11:00Z")]}) == \
        metrics.LedgerFacts(None, None, None)


def _sample_text():
    ledger = {"cls-a": metrics.LedgerFacts(4, 1796177430.5, "promoted"),
              'odd"name\\': metrics.LedgerFacts(None, None, None)}
    models = {"cls-a": {"state": "serving"}, "gen-b": {"state": "failed"}, "gen-c": {"state": "busy"}}
    return metrics.text(metrics.families(ledger, models, ledger_up=True, started_s=1796000000))


def test_the_metrics_text_has_each_family_with_its_samples():
    lines = _sample_text().splitlines()
    assert {line for line in lines if not line.startswith("#")} == {
        'genaug_last_retrain_success_timestamp_seconds{model="cls-a"} 1796177430.5',
        'genaug_last_decision{model="cls-a",decision="promoted"} 1',
        'genaug_champion_version{model="cls-a"} 4',
        'genaug_model_ready{model="cls-a"} 1', 'genaug_model_ready{model="gen-b"} 0',
        'genaug_model_ready{model="gen-c"} 0',
        "genaug_ledger_up 1", "genaug_reconciler_start_time_seconds 1796000000"}
    assert "# TYPE genaug_model_ready gauge" in lines
    escaped = metrics.text([metrics.Family("x", "gauge", "h", [({"model": 'odd"name\\\n'}, 1)])])
    assert 'x{model="odd\\"name\\\\\\n"} 1' in escaped


def test_promtool_accepts_the_metrics_text():
    proc = _run("check", "metrics", stdin=_sample_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A lint promtool enforces (a counter's name ends in _total), so the check above can fail.
    counter = _sample_text().replace("genaug_ledger_up gauge", "genaug_ledger_up counter")
    broken = _run("check", "metrics", stdin=counter)
    assert broken.returncode != 0 and "_total" in broken.stdout + broken.stderr


def test_the_reconciler_serves_metrics_and_reports_an_unreadable_ledger():
    states = reconciler.ModelStates(stale_after_s=60)
    states.record(ReconcileReport(already=["cls-a"], failed={"gen-b": "load failed"}), now=1.0)
    states.record_ledger({"cls-a": metrics.LedgerFacts(2, 1796177430.0, "promoted")})
    server = reconciler.serve(states, port=0, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.headers["Content-Type"] == metrics.CONTENT_TYPE
            body = response.read().decode()
        assert 'genaug_model_ready{model="gen-b"} 0' in body and 'genaug_champion_version{model="cls-a"} 2' in body
        assert "genaug_ledger_up 1" in body
        states.record_ledger(None)  # the records could not be read after the pass
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        assert "genaug_ledger_up 0" in body and "genaug_champion_version{" not in body
    finally:
        server.shutdown()
        server.server_close()


# -- the rules ------------------------------------------------------------------------------

def test_promtool_checks_the_rule_groups(rule_spec, tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_spec))
    proc = _run("check", "rules", str(tmp_path / "rules.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rule_spec['groups'])} rules found" in proc.stdout


def test_every_alert_fires_and_stays_silent_in_the_promtool_rule_tests(rule_spec, tmp_path):
    tests = _rule_folder(tmp_path, rule_spec)
    proc = _run("test", "rules", *tests, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    firing, silent = set(), set()
    for name in tests:
        for group in yaml.safe_load((RULE_TESTS / name).read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    assert firing == silent == _alerts(rule_spec)


def test_a_rule_that_changes_fails_its_promtool_test(rule_spec, tmp_path):
    """A threshold moved (5% -> 50%): the rule tests catch it, so the test above can fail."""
    import copy

    spec = copy.deepcopy(rule_spec)
    (rule,) = [r for g in spec["groups"] for r in g["rules"] if r.get("alert") == "GenaugInferenceFailureRatioHigh"]
    rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    _rule_folder(tmp_path, spec)
    proc = _run("test", "rules", "serving.yaml", cwd=tmp_path)
    assert proc.returncode != 0 and "GenaugInferenceFailureRatioHigh" in proc.stdout + proc.stderr


def test_the_retrain_period_is_where_docs_monitoring_md_says_to_patch_it(rule_spec):
    """docs/monitoring.md patches /spec/groups/1/rules/0/expr; the default is the default CRON's period."""
    rule = rule_spec["groups"][1]["rules"][0]
    assert rule == {"record": "genaug:retrain_period_seconds", "expr": "vector(86400)"}
    makefile = (REPO / "Makefile").read_text()
    assert "CRON       ?= 0 0 2 * * *" in makefile  # daily: 86400 s
    assert "/spec/groups/1/rules/0/expr" in (REPO / "docs" / "monitoring.md").read_text()


# -- names shared by the reconciler, the rules and the dashboard ------------------------------

def _reconciler_metrics() -> set[str]:
    return {f.name for f in metrics.families({}, {}, ledger_up=True, started_s=0)}


def _metric_names(expr: str) -> set[str]:
    import re

    words = set(re.findall(r"\b([a-z_][a-z0-9_:]*)\b(?!\s*\()", re.sub(r'"[^"]*"|\[[^\]]*\]|\{[^}]*\}', "", expr)))
    keywords = {"by", "on", "or", "and", "unless", "offset", "without", "ignoring", "group_left", "group_right"}
    return {w for w in words - keywords if "_" in w}


def test_the_rules_and_the_dashboard_use_only_metrics_that_exist(rule_spec, tmp_path):
    known = _reconciler_metrics() | TRITON | ARGO | {"genaug:retrain_period_seconds"}
    for group in rule_spec["groups"]:
        for rule in group["rules"]:
            assert _metric_names(rule["expr"]) <= known, (rule.get("alert") or rule.get("record"), rule["expr"])
    dashboard = json.loads((COMPONENT / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for expr in exprs:
        assert _metric_names(expr) <= known, expr
    assert {n for e in exprs for n in _metric_names(e)} >= {"genaug_last_decision", "nv_inference_request_failure"}
    # Every query parses: promtool checks them as recording rules.
    queries = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:q{i}", "expr": e}
                                                         for i, e in enumerate(exprs)]}]}
    (tmp_path / "dashboard-queries.yaml").write_text(yaml.safe_dump(queries))
    proc = _run("check", "rules", str(tmp_path / "dashboard-queries.yaml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
