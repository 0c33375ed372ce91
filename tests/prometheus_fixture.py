"""A real Prometheus for the test session (Debian's server, `make prometheus`).

One per session, started on a free loopback port when a test first asks for it, with its
own configuration and storage under pytest's temporary folder. It scrapes every second:

- job ``triton``: the session stack's Triton metrics port (GENAUG_TRITON_METRICS);
- job ``reconciler``: whatever address a test registers with ``scrape("reconciler", ...)``
  (file-based discovery, which Prometheus re-reads as soon as the file changes), since the
  reconciler's endpoint lives only as long as the test that starts it.

It also loads the monitoring component's PrometheusRule groups as a plain rule file, so the
alerts and the recording rule are evaluated against real series. Teardown stops it and
fails if its process survives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from genaug.stack.ports import free_port
from tests.stack_fixture import LocalStack

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_RULE = REPO / "manifests" / "components" / "monitoring" / "prometheus-rule.yaml"
JOBS = ("triton", "reconciler")
SCRAPE_INTERVAL = "1s"
# Hang guards, not performance assertions: Prometheus is ready in about a second and a new
# target's first sample follows within a scrape interval or two on an idle machine.
READY_TIMEOUT_S = 60
SAMPLE_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def rule_spec() -> dict:
    """The spec of the monitoring component's PrometheusRule: {"groups": [...]}, which is
    also the layout of a plain Prometheus rule file."""
    (doc,) = [d for d in yaml.safe_load_all(PROMETHEUS_RULE.read_text()) if d]
    return doc["spec"]


def _config(folder: Path) -> dict:
    return {"global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": [str(folder / "rules.yaml")],
            "scrape_configs": [{"job_name": job, "file_sd_configs": [{"files": [str(folder / f"{job}.json")]}]}
                               for job in JOBS]}


@dataclass
class LocalPrometheus:
    """The session's Prometheus: its URL, the scrape targets and the HTTP API's queries."""

    url: str
    folder: Path

    def scrape(self, job: str, address: str | None) -> None:
        """Scrape ``address`` (host:port, path /metrics) as ``job`` from now on; None: nothing."""
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r}; this Prometheus has the jobs {', '.join(JOBS)}")
        targets = [{"targets": [address]}] if address else []
        # Written whole, then renamed: Prometheus watches the file and must never read half of it.
        partial = self.folder / f".{job}.json.partial"
        partial.write_text(json.dumps(targets))
        partial.replace(self.folder / f"{job}.json")

    def api(self, path: str, **params: str) -> dict:
        """GET /api/v1/<path>; the answer's ``data``; raises AssertionError on an API error."""
        url = f"{self.url}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as err:
            body = json.loads(err.read() or b"{}")
        assert body.get("status") == "success", f"GET {url}: {body}"
        return body["data"]

    def newest_sample(self, selector: str, after_s: float) -> float:
        """The value of the one series ``selector`` matches, from its newest scrape that began
        after ``after_s`` (Unix seconds): waits for that scrape.

        The samples' own timestamps (a range selector returns them) tell that the scrape saw
        everything done before ``after_s``; an instant query's evaluation time would not."""
        deadline, series = time.monotonic() + SAMPLE_TIMEOUT_S, []
        while time.monotonic() < deadline:
            series = self.api("query", query=f"{selector}[1m]")["result"]
            assert len(series) <= 1, f"{selector} matches several series: {[s['metric'] for s in series]}"
            fresh = [(t, v) for t, v in (series[0]["values"] if series else []) if t > after_s]
            if fresh:
                return float(fresh[-1][1])
            time.sleep(0.25)
        raise AssertionError(f"no sample of {selector} scraped after {after_s:.3f} within {SAMPLE_TIMEOUT_S} s "
                             f"(hang guard); last answer: {series}; targets: {self.api('targets')}")

    def rules(self) -> list[dict]:
        """Every loaded rule, once each has been evaluated at least once (health not 'unknown')."""
        deadline, rules = time.monotonic() + SAMPLE_TIMEOUT_S, []
        while time.monotonic() < deadline:
            rules = [rule for group in self.api("rules")["groups"] for rule in group["rules"]]
            if rules and all(rule["health"] != "unknown" for rule in rules):
                return rules
            time.sleep(0.25)
        raise AssertionError(f"the rules were not all evaluated within {SAMPLE_TIMEOUT_S} s (hang guard): {rules}")


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet, or 503 while it replays its storage
            pass
        time.sleep(0.2)
    state = f"exited with {proc.returncode}" if proc.poll() is not None else f"not ready in {READY_TIMEOUT_S} s"
    raise RuntimeError(f"Prometheus {state}; its log {log}:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: Prometheus closes its storage and exits
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="session")
def prometheus(stack, tmp_path_factory):
    """Start Prometheus scraping the stack's Triton; yield a LocalPrometheus; stop it and
    check that nothing of it still runs."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("the prometheus server is not on PATH: `make prometheus` installs Debian's package "
                    "(as root), or put Prometheus' server on PATH.", pytrace=False)
    folder = tmp_path_factory.mktemp("prometheus")
    (folder / "rules.yaml").write_text(yaml.safe_dump(rule_spec()))
    (folder / "prometheus.yml").write_text(yaml.safe_dump(_config(folder)))
    handle = LocalPrometheus(f"http://127.0.0.1:{free_port()}", folder)
    handle.scrape("triton", stack.triton_metrics)
    handle.scrape("reconciler", None)
    log = folder / "prometheus.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={folder / 'data'}",
                                 f"--web.listen-address={handle.url.removeprefix('http://')}"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                # Its own group, so a Ctrl-C meant for pytest reaches it only via teardown.
                                start_new_session=True)
    try:
        _wait_ready(handle.url, proc, log)
        yield handle
    finally:
        _stop(proc)
        assert not LocalStack.alive(proc.pid), f"Prometheus (PID {proc.pid}) still runs after its teardown"
