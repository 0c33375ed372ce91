"""The two Prometheus Operator kinds the monitoring component uses, as typed models.

kubernetes-validate knows no CRD, so tests/unit/test_manifests.py checks ServiceMonitor and
PrometheusRule objects here instead: every field must be one the operator's API documents
for monitoring.coreos.com/v1 (its CRDs, example/prometheus-operator-crd/ in
prometheus-operator/prometheus-operator, v0.8x), with the documented type, required fields
present and durations in the documented pattern. Only the fields genaug could plausibly use
are modelled; any other field is reported as unknown, like strict validation does.
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, get_args, get_origin, get_type_hints

# The operator's Duration pattern (e.g. 30s, 1h30m, 0).
DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")


class SchemaError(ValueError):
    """An object that the operator's API would reject; the message names the field."""


class Duration(str):
    """A string in the operator's Duration pattern."""


@dataclass
class LabelSelector:
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[dict[str, Any]] | None = None


@dataclass
class NamespaceSelector:
    any: bool | None = None
    matchNames: list[str] | None = None


@dataclass
class Endpoint:
    """ServiceMonitor.spec.endpoints[]: one scraped port of the selected Services."""

    port: str | None = None
    targetPort: int | str | None = None
    path: str | None = None
    scheme: str | None = None
    params: dict[str, list[str]] | None = None
    interval: Duration | None = None
    scrapeTimeout: Duration | None = None
    honorLabels: bool | None = None
    honorTimestamps: bool | None = None
    relabelings: list[dict[str, Any]] | None = None
    metricRelabelings: list[dict[str, Any]] | None = None
    tlsConfig: dict[str, Any] | None = None
    authorization: dict[str, Any] | None = None
    basicAuth: dict[str, Any] | None = None
    followRedirects: bool | None = None
    enableHttp2: bool | None = None
    filterRunning: bool | None = None

    def __post_init__(self):
        if self.scheme is not None and self.scheme.lower() not in ("http", "https"):
            raise SchemaError(f"scheme {self.scheme!r}: expected http or https")
        if self.port is None and self.targetPort is None:
            raise SchemaError("an endpoint names its Service port (port) or its targetPort")


@dataclass
class ServiceMonitorSpec:
    selector: LabelSelector
    endpoints: list[Endpoint]
    namespaceSelector: NamespaceSelector | None = None
    jobLabel: str | None = None
    targetLabels: list[str] | None = None
    podTargetLabels: list[str] | None = None
    sampleLimit: int | None = None
    targetLimit: int | None = None
    labelLimit: int | None = None
    attachMetadata: dict[str, Any] | None = None
    scrapeClass: str | None = None


@dataclass
class Rule:
    """PrometheusRule.spec.groups[].rules[]: exactly one of record and alert."""

    expr: int | str
    record: str | None = None
    alert: str | None = None
    # "for" is a Python keyword; the loader maps the field.
    for_: Duration | None = field(default=None, metadata={"key": "for"})
    keep_firing_for: Duration | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    def __post_init__(self):
        if (self.record is None) == (self.alert is None):
            raise SchemaError("a rule sets exactly one of record and alert")
        if self.record is not None and (self.for_ or self.annotations or self.keep_firing_for):
            raise SchemaError(f"recording rule {self.record}: for, keep_firing_for and annotations are for alerts")


@dataclass
class RuleGroup:
    name: str
    rules: list[Rule] = field(default_factory=list)
    interval: Duration | None = None
    limit: int | None = None
    query_offset: Duration | None = None
    partial_response_strategy: str | None = None

    def __post_init__(self):
        if not self.name:
            raise SchemaError("a rule group needs a non-empty name")


@dataclass
class PrometheusRuleSpec:
    groups: list[RuleGroup] | None = None

    def __post_init__(self):
        names = [g.name for g in self.groups or []]
        if len(names) != len(set(names)):
            raise SchemaError(f"group names repeat: {names} (a list-map keyed by name)")


@dataclass
class Metadata:
    name: str
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


SPECS = {"ServiceMonitor": ServiceMonitorSpec, "PrometheusRule": PrometheusRuleSpec}
API_VERSION = "monitoring.coreos.com/v1"


def load(cls, data: Any, where: str):
    """``data`` as ``cls`` (a dataclass, or a typing form of one); SchemaError names ``where``."""
    origin = get_origin(cls)
    if cls is type(None):
        if data is not None:
            raise SchemaError(f"{where}: expected nothing, got {data!r}")
        return None
    if origin in (types.UnionType, typing.Union):
        options = [o for o in get_args(cls) if o is not type(None)]
        if data is None and len(options) < len(get_args(cls)):
            return None
        if len(options) == 1:  # X | None: X's own error says more
            return load(options[0], data, where)
        errors = []
        for option in options:
            try:
                return load(option, data, where)
            except SchemaError as err:
                errors.append(str(err))
        raise SchemaError(f"{where}: {data!r} fits none of: " + "; ".join(errors))
    if origin is list:
        if not isinstance(data, list):
            raise SchemaError(f"{where}: expected a list, got {type(data).__name__}")
        (item,) = get_args(cls)
        return [load(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise SchemaError(f"{where}: expected a map, got {type(data).__name__}")
        key, value = get_args(cls)
        return {load(key, k, f"{where} key"): load(value, v, f"{where}.{k}") for k, v in data.items()}
    if cls is Any:
        return data
    if cls is Duration:
        if not isinstance(data, str) or not DURATION.match(data):
            raise SchemaError(f"{where}: {data!r} is not a duration such as 30s or 1h30m")
        return Duration(data)
    if cls in (str, int, bool):
        # YAML's true is an int too in Python; the API's types do not mix.
        if type(data) is not cls:
            raise SchemaError(f"{where}: expected {cls.__name__}, got {type(data).__name__} {data!r}")
        return data
    if not isinstance(data, dict):
        raise SchemaError(f"{where}: expected an object, got {type(data).__name__}")
    hints = get_type_hints(cls)
    keys = {f.metadata.get("key", f.name): f for f in fields(cls)}
    unknown = set(data) - set(keys)
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {sorted(unknown)}; {cls.__name__} has {sorted(keys)}")
    values = {}
    for key, f in keys.items():
        if key in data:
            values[f.name] = load(hints[f.name], data[key], f"{where}.{key}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise SchemaError(f"{where}: required field {key!r} is missing")
    try:
        return cls(**values)
    except SchemaError as err:
        raise SchemaError(f"{where}: {err}") from None


def validate(obj: dict) -> object:
    """The object's spec as its typed model; SchemaError when the operator would reject it."""
    kind = obj.get("kind")
    if kind not in SPECS:
        raise SchemaError(f"kind {kind!r} is not one of {sorted(SPECS)}")
    where = f"{kind}/{obj.get('metadata', {}).get('name')}"
    if obj.get("apiVersion") != API_VERSION:
        raise SchemaError(f"{where}: apiVersion {obj.get('apiVersion')!r}, expected {API_VERSION}")
    unknown = set(obj) - {"apiVersion", "kind", "metadata", "spec"}
    if unknown:
        raise SchemaError(f"{where}: unknown top-level field(s) {sorted(unknown)}")
    load(Metadata, obj.get("metadata"), f"{where}.metadata")
    if "spec" not in obj:
        raise SchemaError(f"{where}: required field 'spec' is missing")
    return load(SPECS[kind], obj["spec"], f"{where}.spec")
