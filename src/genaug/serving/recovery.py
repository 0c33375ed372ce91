"""Make Triton, the repository and the MLflow aliases agree with the ledger again.

The ledger record of a model is the truth. A promotion is committed by one conditional
write of that record; everything before it is undone here, everything after it redone:

- ``repin``: config.pbtxt is rewritten from the ledger's text for the champion, Triton
  loads the champion if it does not serve it (only after ``integrity.verify``), and the
  ``champion``/``previous`` aliases point at the ledger's MLflow versions;
- ``revert``: an unfinished promotion (an ``intent`` in the record) is rolled back: repin,
  remove the attempted version's files, tag its MLflow version, clear the intent, record
  the decision.

Both run under the model's lease: in promotion's own error path, and in the reconciler
(``make up`` and the cluster sidecar) after a crash.
"""

from __future__ import annotations

import copy

from genaug.services import tracking
from genaug.services.triton import Triton
from genaug.serving import integrity
from genaug.serving.ledger import Ledger, now, with_event
from genaug.serving.repository import Repository


def mlflow_of(state: dict, version: int | None) -> str | None:
    if version is None:
        return None
    return ((state.get("versions") or {}).get(str(version)) or {}).get("mlflow_version")


def aliases_wrong(name: str, state: dict) -> list[str]:
    """The aliases of ``name`` that do not point where the ledger says."""
    want = {"champion": mlflow_of(state, state.get("champion")), "previous": mlflow_of(state, state.get("previous"))}
    return [alias for alias, version in want.items() if tracking.alias_version(name, alias) != version]


def repin(name: str, state: dict, repo: Repository, triton: Triton, aliases: bool = True) -> list[str]:
    """Make the repository, Triton and (when ``aliases``) MLflow serve the ledger's champion;
    return what was changed. Raises IntegrityError, leaving what serves, if the champion's
    files are not the approved ones."""
    done = []
    champion = state.get("champion")
    if champion is None:
        if repo.config(name) is not None:
            repo.store.delete(repo.bucket, f"{repo.prefix}/{name}/config.pbtxt")
            done.append("removed config.pbtxt (the ledger has no champion)")
        if triton.ready(name):
            triton.unload(name)
            done.append("unloaded (the ledger has no champion)")
    else:
        entry = state["versions"][str(champion)]
        current = repo.config(name)
        if current is None or integrity.sha256(current.encode()) != entry["files"]["config.pbtxt"]["sha256"]:
            repo.write_config(name, entry["config"])
            done.append(f"config.pbtxt re-pinned to v{champion}")
        if not triton.ready(name, str(champion)):
            integrity.verify(repo, name, state, champion)
            triton.load(name)
            if not triton.ready(name, str(champion)):
                raise RuntimeError(f"Triton at {triton.url} loaded {name} but does not serve v{champion}")
            done.append(f"loaded v{champion}")
    if aliases:
        for alias in aliases_wrong(name, state):
            tracking.set_alias(name, alias, mlflow_of(state, state.get(alias)))
            done.append(f"alias {alias} -> {mlflow_of(state, state.get(alias))}")
    return done


def revert(name: str, ledger: Ledger, repo: Repository, triton: Triton, reason: str,
           aliases: bool = True) -> dict | None:
    """Undo the unfinished promotion of ``name``, if any; return the decision recorded."""
    record = ledger.read(name)
    state = record.value
    intent = state.get("intent")
    if not intent:
        return None
    attempted = int(intent["version"])
    # What serves must be the champion before the intent, never the attempted version.
    restored = copy.deepcopy(state)
    restored["versions"].pop(str(attempted), None)
    done = repin(name, restored, repo, triton, aliases=aliases)
    leftovers = [rel for rel in repo.objects(name) if rel.startswith(f"{attempted}/")]
    repo.remove(name, leftovers)
    if aliases and intent.get("mlflow_version"):
        tracking.tag_version(name, intent["mlflow_version"], {"genaug.promotion": "failed"})
    event = {"time": now(), "model": name, "decision": "failed", "reason": reason, "attempted_version": attempted,
             "champion_version_after": state.get("champion"), "candidate_sha256": intent.get("candidate_sha256"),
             "lineage": intent.get("lineage", {}), "recovery": done + [f"removed {len(leftovers)} file(s) of v{attempted}"]}
    restored["intent"] = None
    ledger.write(name, record, with_event(restored, event))
    return ledger.record(name, event)
