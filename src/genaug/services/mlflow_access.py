"""Who may do what in MLflow: one identity per role, and the admin calls that set them up.

MLflow runs its basic-auth app (``mlflow server --app-name basic-auth``). Its permissions
are READ < USE < EDIT < MANAGE (MANAGE alone may delete), plus DENY, a veto. The roles:

- ``pipeline`` (every step but promote): EDIT on genaug's experiment, so it logs runs but
  cannot delete them; DENY on every registered model, because MLflow lets any user create
  a model and makes its creator MANAGE it, which would let the steps move ``champion``.
- ``promote``: EDIT on the experiment (it logs its own step run and registers versions
  from the steps' runs) and MANAGE on every registered model (it moves ``champion`` and
  ``previous`` and deletes an alias on rollback).
- ``reader``: READ on every experiment and model, for people who browse the UI.
- the admin: MLflow's own, which creates the others; nothing in a run uses it.

``DEFAULT_PERMISSION`` is NO_PERMISSIONS: an account with no grant sees nothing. With
MLflow's default, READ, every account added later (another team's) would read every
experiment, and since MLflow never lowers an explicit grant below the default, nothing
could be hidden from it except by DENY.

Standard library only: the stack launcher and the cluster's set-up Job call it before any
step runs, and the admin API needs nothing of the mlflow package.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

DEFAULT_PERMISSION = "NO_PERMISSIONS"
ADMIN_USERNAME = "genaug-admin"
# MLflow refuses shorter passwords.
MIN_PASSWORD_CHARS = 12
# The account of each role but the admin.
USERNAMES = {"pipeline": "genaug-pipeline", "promote": "genaug-promote", "reader": "genaug-reader"}
# Where the promote identity's MLflow account is given to a process that also holds the
# pipeline's (the local stack's admin.env); on a cluster the promote step's
# MLFLOW_TRACKING_USERNAME/PASSWORD already are promote's.
PROMOTE_USERNAME_ENV, PROMOTE_PASSWORD_ENV = "GENAUG_PROMOTE_MLFLOW_USERNAME", "GENAUG_PROMOTE_MLFLOW_PASSWORD"
# The experiment tag MLflow 3's UI reads to open the model-training view.
_KIND_TAG, _MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


@dataclass(frozen=True)
class Grant:
    resource_type: str   # experiment | registered_model
    resource_id: str     # an experiment id, a model name, or "*" for all
    permission: str      # READ | EDIT | MANAGE | DENY


def grants(experiment_id: str) -> dict[str, tuple[Grant, ...]]:
    """Each role's grants, given genaug's experiment id (grants on experiments are by id)."""
    return {
        "pipeline": (Grant("experiment", experiment_id, "EDIT"), Grant("registered_model", "*", "DENY")),
        # Promotion and retention: MANAGE on the experiment because MLflow lets only MANAGE
        # delete a run, which `genaug gc` does to runs that no kept version stands on.
        "promote": (Grant("experiment", experiment_id, "MANAGE"), Grant("registered_model", "*", "MANAGE")),
        "reader": (Grant("experiment", "*", "READ"), Grant("registered_model", "*", "READ")),
    }


def basic_auth(username: str, password: str) -> str:
    """The value of an HTTP ``Authorization`` header that logs ``username`` in (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class AccessError(RuntimeError):
    """An admin call failed; the message names the server, the call and the fix."""


class MlflowAdmin:
    """MLflow's REST API as its admin: users, grants and genaug's experiment."""

    def __init__(self, uri: str, password: str, username: str = ADMIN_USERNAME, timeout_s: float = 10.0):
        self.uri = uri.rstrip("/")
        self.username = username
        self.timeout_s = timeout_s
        self._auth = basic_auth(username, password)

    def call(self, method: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
        """One JSON request; returns the decoded answer. Raises AccessError, or
        ``Refused(code)`` for an MLflow error with a JSON body (e.g. RESOURCE_ALREADY_EXISTS)."""
        url = f"{self.uri}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Authorization": self._auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            text = err.read().decode(errors="replace")
            if err.code == 401:
                raise AccessError(f"MLflow at {self.uri} refused admin {self.username!r} (401) on {path}: the admin "
                                  "password does not match the one its auth database was created with; locally, "
                                  "restore .genaug/mlflow-auth.json or move .genaug/mlflow/basic_auth.db away to "
                                  "start the accounts anew") from None
            try:
                code = json.loads(text).get("error_code", str(err.code))
            except ValueError:
                raise AccessError(f"MLflow at {self.uri} answered {err.code} on {method} {path}: {text[:200]} "
                                  "(is it running with --app-name basic-auth?)") from None
            raise Refused(code, f"{method} {path}: {text[:200]}") from None
        except (urllib.error.URLError, OSError) as err:
            raise AccessError(f"cannot reach MLflow at {self.uri} ({err}); is it running?") from err

    def ensure_user(self, username: str, password: str) -> None:
        """Create the account, or set its password when it exists (a new credentials file
        then takes over an old auth database)."""
        try:
            self.call("POST", "/api/2.0/mlflow/users/create", {"username": username, "password": password})
        except Refused as err:
            if err.code != "RESOURCE_ALREADY_EXISTS":
                raise
            self.call("PATCH", "/api/2.0/mlflow/users/update-password", {"username": username, "password": password})

    def ensure_grant(self, username: str, grant: Grant) -> None:
        """Give ``username`` exactly ``grant``: an existing grant on that resource at another
        level is replaced (MLflow refuses a second grant on one resource)."""
        body = {"username": username, "resource_type": grant.resource_type, "resource_id": grant.resource_id}
        try:
            self.call("POST", "/api/3.0/mlflow/users/permissions/grant", {**body, "permission": grant.permission})
        except Refused as err:
            if err.code != "RESOURCE_ALREADY_EXISTS":
                raise
            self.call("POST", "/api/3.0/mlflow/users/permissions/revoke", body)
            self.call("POST", "/api/3.0/mlflow/users/permissions/grant", {**body, "permission": grant.permission})

    def ensure_experiment(self, name: str) -> str:
        """The id of experiment ``name``, created (and marked as model training) if missing.
        The admin creates it so that no role owns it: its creator would MANAGE it."""
        try:
            found = self.call("GET", "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": name})
            experiment_id = found["experiment"]["experiment_id"]
        except Refused as err:
            if err.code != "RESOURCE_DOES_NOT_EXIST":
                raise
            experiment_id = self.call("POST", "/api/2.0/mlflow/experiments/create", {"name": name})["experiment_id"]
        self.call("POST", "/api/2.0/mlflow/experiments/set-experiment-tag",
                  {"experiment_id": experiment_id, "key": _KIND_TAG, "value": _MODEL_TRAINING})
        return experiment_id


class Refused(AccessError):
    """MLflow answered with an error code (``code``), e.g. RESOURCE_ALREADY_EXISTS."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code


def provision(admin: MlflowAdmin, passwords: dict[str, str], experiment: str) -> str:
    """Make every role's account (``passwords``: role -> password) with exactly its grants
    on ``experiment``, created if missing. Idempotent; returns the experiment id."""
    short = [role for role, password in passwords.items() if len(password) < MIN_PASSWORD_CHARS]
    if short:
        raise AccessError(f"the MLflow passwords of {short} are shorter than {MIN_PASSWORD_CHARS} characters, "
                          "which MLflow refuses; make longer ones")
    experiment_id = admin.ensure_experiment(experiment)
    for role, role_grants in grants(experiment_id).items():
        admin.ensure_user(USERNAMES[role], passwords[role])
        for grant in role_grants:
            admin.ensure_grant(USERNAMES[role], grant)
    return experiment_id


# MLflow checks the password's PBKDF2 hash on every request unless it caches the result:
# ~0.5 s per logged metric on 2 busy cores (bench/RESULTS.md). A cached login stays valid
# this long after its password changes on another worker; a change through the API clears
# the cache of the worker that served it.
LOGIN_CACHE_S = 60


def auth_config(database_uri: str, login_cache_s: int = LOGIN_CACHE_S) -> str:
    """The text of MLflow's basic_auth.ini (MLFLOW_AUTH_CONFIG_PATH). No secret: the admin
    password comes from MLFLOW_AUTH_ADMIN_PASSWORD, and a PostgreSQL password from PGPASSWORD."""
    return ("[mlflow]\n"
            f"default_permission = {DEFAULT_PERMISSION}\n"
            f"database_uri = {database_uri}\n"
            f"admin_username = {ADMIN_USERNAME}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            "grant_default_workspace_access = false\n"
            f"auth_cache_ttl_seconds = {login_cache_s}\n")
