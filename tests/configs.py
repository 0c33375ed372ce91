"""Resolved configurations for tests that call steps directly: the sections a pipeline run
would hand them (genaug.params.resolve)."""

from genaug.params import RunConfig, resolve


def smoke(**params) -> RunConfig:
    """The smoke profile's RunConfig, with ``params`` (run parameters) applied."""
    return resolve({"profile": "smoke", **params})


def quick(**params) -> RunConfig:
    return resolve({"profile": "quick", **params})
