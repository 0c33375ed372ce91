"""Connect to a Kubeflow Pipelines API server, or fail in seconds saying why and what to do.

The host is KFP_HOST: the KFP UI/API base URL, e.g. http://localhost:8080 after
``kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80``, or the URL of the
Kubeflow central dashboard's pipeline endpoint. Credentials, first found wins:

- ``KFP_TOKEN``: a bearer token (e.g. ``kubectl create token <sa> -n <profile>``);
- ``KF_PIPELINES_SA_TOKEN_PATH``: a file holding a projected service-account token (what
  Kubeflow mounts into notebooks, re-read on every request);
- nothing, for a port-forward to a cluster without auth.

kfp.Client itself retries an unreachable host for a long time and reports a login page
as a JSON error, so one bounded probe of /apis/v2beta1/healthz comes first.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

PROBE_TIMEOUT_S = 5.0
PORT_FORWARD_HINT = ("e.g. `kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80` and "
                     "KFP_HOST=http://localhost:8080")


class KfpConnectionError(RuntimeError):
    """KFP cannot be reached or refuses us; the message names the host and the fix."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # An auth proxy (oauth2-proxy, Dex) answers an unauthenticated API call with a redirect
    # to its login page; following it would turn "not logged in" into a confusing HTML 200.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def bearer_token() -> tuple[str | None, str]:
    """(token or None, where it came from) per the module docstring's order."""
    if os.environ.get("KFP_TOKEN"):
        return os.environ["KFP_TOKEN"].strip(), "KFP_TOKEN"
    path = os.environ.get("KF_PIPELINES_SA_TOKEN_PATH")
    if path:
        file = Path(path)
        if not file.is_file() or not file.read_text().strip():
            raise KfpConnectionError(f"KF_PIPELINES_SA_TOKEN_PATH={path} is not a file holding a token; point it "
                                     "at a projected service-account token, or set KFP_TOKEN instead")
        return file.read_text().strip(), f"KF_PIPELINES_SA_TOKEN_PATH={path}"
    return None, "no credentials (KFP_TOKEN and KF_PIPELINES_SA_TOKEN_PATH unset)"


def check_host(host: str | None) -> str:
    """``host`` without a trailing slash; KfpConnectionError when it is missing or no URL."""
    if not host:
        raise KfpConnectionError(f"KFP_HOST is not set: give the Kubeflow Pipelines URL, {PORT_FORWARD_HINT}")
    if not host.startswith(("http://", "https://")):
        raise KfpConnectionError(f"KFP_HOST={host!r} must start with http:// or https://, e.g. http://{host}")
    return host.rstrip("/")


def probe(host: str, token: str | None, source: str, timeout_s: float = PROBE_TIMEOUT_S) -> dict:
    """GET <host>/apis/v2beta1/healthz once, within ``timeout_s``; its JSON, or a
    KfpConnectionError that says whether the host is unreachable, not KFP, or refuses us."""
    request = urllib.request.Request(f"{host}/apis/v2beta1/healthz", headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403) or 300 <= err.code < 400:
            login = f" (redirected to {err.headers.get('Location')})" if 300 <= err.code < 400 else ""
            raise KfpConnectionError(
                f"KFP at KFP_HOST={host} refused the request: HTTP {err.code}{login}, with {source}. To fix: set "
                "KFP_TOKEN to a token of a service account with access to your profile namespace "
                "(`kubectl create token default-editor -n <namespace>`), or KF_PIPELINES_SA_TOKEN_PATH to a "
                "projected token file") from None
        if err.code == 404:
            raise KfpConnectionError(f"KFP_HOST={host} answers, but has no /apis/v2beta1/healthz: it is not a "
                                     f"Kubeflow Pipelines v2 API; {PORT_FORWARD_HINT}") from None
        raise KfpConnectionError(f"KFP at KFP_HOST={host} failed its health check: HTTP {err.code}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise KfpConnectionError(f"KFP_HOST={host} is unreachable ({reason}; the probe waits {timeout_s:g} s); check the "
                                 f"URL and that the API is reachable from here, {PORT_FORWARD_HINT}") from None
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise KfpConnectionError(f"KFP_HOST={host} answered /apis/v2beta1/healthz with something other than "
                                 f"JSON (a login page?); {PORT_FORWARD_HINT}") from None


def connect(host: str | None, namespace: str | None = None):
    """A kfp.Client for ``host`` (KFP_HOST) acting in ``namespace`` (the user's profile
    namespace on multi-user Kubeflow; None on a single-user install), after the probe."""
    import warnings

    host = check_host(host)
    token, source = bearer_token()
    health = probe(host, token, source)
    if health.get("multi_user") and not namespace:
        raise KfpConnectionError(f"KFP at {host} is multi-user: set KFP_NAMESPACE to your profile namespace, "
                                 "e.g. KFP_NAMESPACE=kubeflow-user-example-com")
    import kfp
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    # A projected token rotates, so the client re-reads the file rather than keep one copy.
    auth = ({"credentials": ServiceAccountTokenVolumeCredentials(os.environ["KF_PIPELINES_SA_TOKEN_PATH"])}
            if source.startswith("KF_PIPELINES_SA_TOKEN_PATH") else {"existing_token": token})
    # kfp.Client warns on every construction that it needs a v2 server; the probe checked that.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return kfp.Client(host=host, namespace=namespace or "kubeflow", **auth)
