"""Run a pipeline's independent tasks at the same time in KFP's local runner, each with its
share of the CPU threads.

kfp.local (2.17) executes the tasks of a DAG one after another, so on a 2-core machine the
classifier on real data waits for the generator although neither needs the other. A
cluster runs them side by side; this module does the same locally. It is the only place
that touches kfp.local's internals, and it touches two of them, for the length of one run:

- ``enhanced_dag_orchestrator.run_enhanced_dag``, the runner of every DAG with an exit
  handler or a nested DAG (genaug's), is replaced by ``run_dag``: a task starts as soon as
  every task it depends on has finished, not when all earlier tasks in a topological order
  have. DAGs with dsl.Condition or dsl.ParallelFor are handed back to kfp's own runner.
  Each task still runs through kfp's ``execute_task`` (caching, retries, outputs, logs).
- ``subprocess_task_handler.run_local_subprocess``, which starts a task's process, adds the
  task's thread share to its environment: OMP_NUM_THREADS / MKL_NUM_THREADS to start
  with, and $GENAUG_THREAD_SHARE_FILE, a file the runner rewrites as tasks start and end
  (FairShare). The running tasks split the cores evenly, at most one task per core, and a
  task's progress bar makes torch (and its ONNX Runtime sessions) follow the file within
  seconds (genaug.threads). So the generator trains on one core next to the classifier on
  real data, and on both once that classifier is done; the machine is never
  oversubscribed for more than those seconds, which on 2 cores costs more than running
  one task at a time. Among ready tasks, those with more tasks behind them start first.

A third, ``one_of_outputs()``, is not about concurrency but lives here with the other two
so that one module holds every reach into kfp.local: kfp.local 2.17 resolves a
``dsl.OneOf`` of parameters but refuses one of artifacts (the NODES branches' generator),
so ``OrchestratorUtils.get_dag_output_artifacts`` takes, of several selectors, the output
of the branch that ran, as a cluster does.

tests/unit/test_concurrent_dag.py fails when any of these signatures changes under it, and
runs a real pipeline through them. The compiled YAML is not touched.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import inspect
import os
import tempfile
import threading
from pathlib import Path

from kfp.local import graph_utils, io, status, subprocess_task_handler
from kfp.local.orchestrator import enhanced_dag_orchestrator as kfp_dag
from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
from kfp.pipeline_spec import pipeline_spec_pb2

from genaug.threads import SHARE_FILE_ENV

# The parameters genaug calls or replaces; kfp changing them must fail a test, not a run.
RUN_DAG_PARAMETERS = ("pipeline_resource_name", "dag_component_spec", "executors", "components", "dag_arguments",
                      "pipeline_root", "runner", "unique_pipeline_id", "fail_stack", "parent_io_store")
EXECUTE_TASK_PARAMETERS = ("task_name", "task_spec", "pipeline_resource_name", "components", "executors", "io_store",
                           "pipeline_root", "runner", "unique_pipeline_id", "fail_stack")
SUBPROCESS_PARAMETERS = ("full_command", "env_vars")
DAG_ARTIFACTS_PARAMETERS = ("dag_outputs_spec", "io_store")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_POLL_S = 0.5  # how often a waiting scheduler looks again for threads freed in another DAG

_TRIGGER = pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.TriggerStrategy
_task_env = threading.local()  # .env: the environment of the task this worker thread starts


def cores() -> int:
    """CPU threads this process may use (its affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class FairShare:
    """The machine's threads, shared evenly by the running tasks and re-shared whenever one
    starts or ends. Each task's share is a number in its own file ($GENAUG_THREAD_SHARE_FILE,
    read by genaug.threads in the task), so a task left alone takes up the freed threads."""

    def __init__(self, total: int, folder: Path):
        self.total, self.folder = max(1, total), folder
        self.running: dict[str, Path] = {}  # task key -> its share file, in start order
        self.env: dict[str, dict[str, str]] = {}
        self._started = 0
        self._lock = threading.Lock()

    @property
    def free_slots(self) -> int:
        """How many more tasks may start: each needs at least one thread."""
        with self._lock:
            return self.total - len(self.running)

    def start(self, key: str) -> None:
        """Register a starting task; ``env[key]`` is then the environment its process gets."""
        with self._lock:
            path = self.folder / f"{self._started}-{key}"
            self._started += 1
            self.running[key] = path
            count = str(self._rebalance()[key])
            self.env[key] = {**{name: count for name in THREAD_VARIABLES}, SHARE_FILE_ENV: str(path)}

    def end(self, key: str) -> None:
        with self._lock:
            self.running.pop(key, None)
            self.env.pop(key, None)
            self._rebalance()

    def _rebalance(self) -> dict[str, int]:
        """Even shares, the remainder to the longest-running tasks; every file rewritten atomically."""
        n = len(self.running)
        shares = {key: self.total // n + (i < self.total % n) for i, key in enumerate(self.running)} if n else {}
        for key, count in shares.items():
            path = self.running[key]
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(str(count))
            os.replace(tmp, path)
        return shares


_budget: FairShare | None = None
_original_run_dag = kfp_dag.run_enhanced_dag
_original_subprocess = subprocess_task_handler.run_local_subprocess


def _subprocess_with_share(full_command, env_vars=None):
    extra = getattr(_task_env, "env", None)
    if extra:
        env_vars = {**(env_vars or {}), **extra}
    return _original_subprocess(full_command=full_command, env_vars=env_vars)


def _is_exit_task(spec) -> bool:
    """kfp's own test: ALL_UPSTREAM_TASKS_COMPLETED and a PipelineTaskFinalStatus input."""
    return (spec.trigger_policy.strategy == _TRIGGER.ALL_UPSTREAM_TASKS_COMPLETED
            and any(p.HasField("task_final_status") for p in spec.inputs.parameters.values()))


def _has_control_flow(spec) -> bool:
    return bool(spec.trigger_policy.condition) or spec.WhichOneof("iterator") is not None


def run_dag(pipeline_resource_name, dag_component_spec, executors, components, dag_arguments, pipeline_root,
            runner, unique_pipeline_id, fail_stack, parent_io_store=None):
    """kfp's run_enhanced_dag with independent tasks at the same time: (outputs, status)."""
    tasks = dict(dag_component_spec.dag.tasks)
    if _budget is None or any(_has_control_flow(spec) for spec in tasks.values()):
        return _original_run_dag(pipeline_resource_name, dag_component_spec, executors, components, dag_arguments,
                                 pipeline_root, runner, unique_pipeline_id, fail_stack, parent_io_store)
    store = io.IOStore(parent=parent_io_store)
    arguments = OrchestratorUtils.join_user_inputs_and_defaults(
        dag_arguments=dag_arguments, dag_inputs_spec=dag_component_spec.input_definitions)
    for key, value in arguments.items():
        store.put_parent_input(key, value)
    common = dict(pipeline_resource_name=pipeline_resource_name, components=components, executors=executors,
                  io_store=store, pipeline_root=pipeline_root, runner=runner,
                  unique_pipeline_id=unique_pipeline_id, fail_stack=fail_stack)
    body = {name: spec for name, spec in tasks.items() if not _is_exit_task(spec)}
    failed = _run_body(body, components, common)
    exit_failed = False
    for name, spec in tasks.items():  # exit handlers: after the body, whatever its outcome
        if name not in body:
            exit_failed |= not _finish(name, *_execute(name, spec, None, common), common)
    if failed or exit_failed:
        return {}, status.Status.FAILURE
    return OrchestratorUtils.get_dag_outputs(dag_outputs_spec=dag_component_spec.dag.outputs, io_store=store), \
        status.Status.SUCCESS


def _execute(name, spec, key: str | None, common: dict):
    """kfp's execute_task; a leaf task (``key``, already started in the budget) runs with
    its thread share, and gives it back when it ends."""
    _task_env.env = _budget.env[key] if key else None
    try:
        return kfp_dag.execute_task(task_name=name, task_spec=spec, **common)
    finally:
        if key:
            _budget.end(key)
        _task_env.env = None


def _finish(name, outputs, task_status, common) -> bool:
    """Record a finished task's status and outputs as kfp does; True if it succeeded."""
    ok = task_status == status.Status.SUCCESS
    common["io_store"].put_task_status(name, "SUCCEEDED" if ok else "FAILED")
    if ok:
        for key, value in outputs.items():
            common["io_store"].put_task_output(name, key, value)
    else:
        common["fail_stack"].append(name)
    return ok


def _descendants(body: dict) -> dict[str, int]:
    """How many tasks depend on each task, directly or not: the first to start among equals."""
    children = {name: [n for n, spec in body.items() if name in spec.dependent_tasks] for name in body}
    memo: dict[str, set] = {}

    def below(name: str) -> set:
        if name not in memo:
            memo[name] = set(children[name]).union(*(below(c) for c in children[name]))
        return memo[name]

    return {name: len(below(name)) for name in body}


def _run_body(body: dict, components: dict, common: dict) -> bool:
    """Run the body's tasks as their dependencies allow; True if any failed or was skipped."""
    order = list(reversed(graph_utils.topological_sort_tasks(body))) if body else []
    weight = _descendants(body)
    pending, done, failed = list(order), set(), set()
    running: dict[futures.Future, str] = {}
    prefix = common["pipeline_resource_name"].rsplit("/", 1)[-1]
    with futures.ThreadPoolExecutor(max_workers=max(1, len(body)), thread_name_prefix="kfp-task") as pool:
        while pending or running:
            ready = [n for n in pending if all(d in done or d in failed for d in body[n].dependent_tasks)]
            for name in [n for n in ready if any(d in failed for d in body[n].dependent_tasks)
                         and body[n].trigger_policy.strategy != _TRIGGER.ALL_UPSTREAM_TASKS_COMPLETED]:
                pending.remove(name)  # an upstream task failed: skipped, as kfp does
                ready.remove(name)
                failed.add(name)
                common["io_store"].put_task_status(name, "FAILED")
            # Tasks with more work behind them first (a stable sort keeps kfp's order among equals).
            for name in sorted(ready, key=lambda n: -weight[n]):
                leaf = components[body[name].component_ref.name].WhichOneof("implementation") != "dag"
                if leaf and _budget.free_slots <= 0:
                    continue
                pending.remove(name)
                key = f"{prefix}-{name}" if leaf else None
                if leaf:  # here, not in the worker: the next task sees this one's slot taken
                    _budget.start(key)
                running[pool.submit(_execute, name, body[name], key, common)] = name
            if not running:
                if not pending:
                    break
                if not any(n in pending for n in ready):
                    raise RuntimeError(f"tasks {pending} wait for tasks that never run; the DAG is malformed")
                threading.Event().wait(_POLL_S)  # every thread is held by a task of another DAG
                continue
            finished, _ = futures.wait(running, timeout=_POLL_S, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                (done if _finish(name, *future.result(), common) else failed).add(name)
    return bool(failed)


_original_dag_artifacts = OrchestratorUtils.get_dag_output_artifacts


def _dag_output_artifacts(cls, dag_outputs_spec, io_store) -> dict:
    """kfp's get_dag_output_artifacts, where a dsl.OneOf (several selectors) is the output
    of the one branch that ran."""
    outputs = {}
    for key, spec in dag_outputs_spec.artifacts.items():
        found = []
        for selector in spec.artifact_selectors:
            try:
                found.append(io_store.get_task_output(selector.producer_subtask, selector.output_artifact_key))
            except ValueError:  # that branch did not run
                continue
        if len(found) != 1:
            raise ValueError(f"dsl.OneOf output {key!r}: {len(found)} of its branches produced it; exactly one must")
        outputs[key] = found[0]
    return outputs


@contextlib.contextmanager
def one_of_outputs():
    """Within this block, kfp.local resolves a dsl.OneOf of artifacts."""
    check_kfp()
    OrchestratorUtils.get_dag_output_artifacts = classmethod(_dag_output_artifacts)
    try:
        yield
    finally:
        OrchestratorUtils.get_dag_output_artifacts = _original_dag_artifacts


def check_kfp() -> None:
    """Raise if the kfp.local functions this module relies on changed their parameters."""
    for fn, wanted in ((_original_run_dag, RUN_DAG_PARAMETERS), (kfp_dag.execute_task, EXECUTE_TASK_PARAMETERS),
                       (_original_subprocess, SUBPROCESS_PARAMETERS),
                       (_original_dag_artifacts, DAG_ARTIFACTS_PARAMETERS)):
        got = tuple(inspect.signature(fn).parameters)
        if got != wanted:
            raise RuntimeError(f"kfp.local's {fn.__module__}.{fn.__name__} takes {got}, not {wanted}: "
                               "pipelines/concurrent_dag.py must follow it (or run with --parallel 0)")


@contextlib.contextmanager
def concurrent_tasks(threads: int | None = None):
    """Within this block, kfp.local runs independent tasks at the same time, sharing
    ``threads`` (default: this machine's cores); yields the FairShare."""
    global _budget
    check_kfp()
    with tempfile.TemporaryDirectory(prefix="thread-shares-") as folder:
        _budget = FairShare(threads or cores(), Path(folder))
        kfp_dag.run_enhanced_dag = run_dag
        subprocess_task_handler.run_local_subprocess = _subprocess_with_share
        try:
            yield _budget
        finally:
            kfp_dag.run_enhanced_dag = _original_run_dag
            subprocess_task_handler.run_local_subprocess = _original_subprocess
            _budget = None
