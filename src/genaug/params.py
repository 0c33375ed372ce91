"""A run's parameters, and the one place they become its configuration: ``resolve``.

PARAMETERS is the parameter list: name, make variable, type, where it lands in the
RunConfig, and the help that `make help`, the CLIs and the KFP UI show. The Makefile's
RUN_PARAMS and the pipeline's signature repeat the names (make and KFP need them written
out); tests/unit/test_params.py checks that the three agree.

``resolve`` applies the user's overrides to the profile's sections and checks everything
before any work; `make validate`, `make pipeline` (also with DRY_RUN=1) and the pipeline's
first task call it. Standard library only, so ``python -m genaug.params --generator nope``
fails in well under a second, before any venv, server or data exists.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, fields, replace

from genaug.catalog import DATASETS, GENERATORS, MLP_GAN_MAX_SIDE, choose, mlp_too_large
from genaug.profiles import PROFILES
from genaug.sections import (ClassifierConfig, ConfigError, DataConfig, DiffusionConfig, GanConfig, MetricsConfig,
                             PromotionConfig, SamplerConfig, SynthesisConfig, sampler_fits)

ParamError = ConfigError
# Seeds reach torch.manual_seed and numpy, which take at most a signed 64-bit integer.
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class Parameter:
    """One run parameter.

    where: "seed" for a RunConfig field, "data.fraction" for a section's field.
    default: for the run-level fields only; a section's field defaults to the profile's value.
    kfp_unset: for settings that default to the profile's: the value that stands for "unset"
        in a KFP pipeline parameter (see KFP_UNSET_WHY).
    """

    name: str
    make: str
    kind: type
    where: str
    example: str
    help: str
    default: object = None
    kfp_unset: object = None


# A KFP pipeline parameter of type int or float always holds a number: the UI shows a default
# and sends it, and a recurring run keeps the values it was created with. So on the KFP side
# "the profile's value" is a number that no valid setting takes (0 steps, a negative eta or
# guidance); pipeline_arguments writes it and resolve_pipeline_arguments reads it back as
# None, at that boundary only. Everywhere else unset is None.
KFP_UNSET_WHY = "a KFP number parameter cannot be empty"

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("dataset", "DATASET", str, "data.dataset", "DATASET=cifar10",
              "fashion_mnist, cifar10, mnist, or your own dataset's name (genaug data snapshot NAME SOURCE)."),
    Parameter("generator", "GEN", str, "generator", "GEN=ddim",
              "vanilla_gan, dcgan, wgan_gp, ddpm or ddim (class-conditional).", default="dcgan"),
    Parameter("classifier", "CLASSIFIER", str, "classifier.name", "CLASSIFIER=cnn",
              "shallow_mlp, deep_mlp, cnn, transfer (ResNet-18) or efficientnet_b0 (both meant for GPUs)."),
    Parameter("profile", "PROFILE", str, "profile", "PROFILE=smoke",
              "smoke (seconds), quick (minutes on a CPU) or full (paper-scale, GPU).", default="quick"),
    Parameter("seed", "SEED", int, "seed", "SEED=0",
              "fixes initialisation, data order and generator noise; an integer >= 0.", default=0),
    Parameter("ratio", "RATIO", float, "synthesis.ratio", "RATIO=0.5",
              "synthetic images per real one, r = n_synthetic / n_real, in (0, 10]."),
    Parameter("margin", "MARGIN", float, "promotion.margin", "MARGIN=0.01",
              "promotion: a candidate must beat the champion by more than this, in [0, 1]."),
    Parameter("floor", "FLOOR", float, "promotion.floor", "FLOOR=0.5",
              "promotion: the least test accuracy (classifier) or label fidelity (generator) to serve."),
    Parameter("sample_steps", "STEPS", int, "sampler.steps", "STEPS=50",
              "diffusion only: K sampling steps, as synthesized and as served", kfp_unset=0),
    Parameter("eta", "ETA", float, "sampler.eta", "ETA=0",
              "ddim only: 0 deterministic, 1 DDPM-like noise", kfp_unset=-1.0),
    Parameter("guidance", "GUIDANCE", float, "sampler.guidance", "GUIDANCE=2",
              "diffusion only: classifier-free guidance scale", kfp_unset=-1.0),
    Parameter("fraction", "FRACTION", float, "data.fraction", "FRACTION=0.1",
              "share of the real training images to use, in (0, 1]; below 1 the small-data regime."),
    Parameter("data_version", "DATA_VERSION", str, "data.version", "DATA_VERSION=2026-12-01",
              "\"latest\" (the data as it is now, as a version id by content; `genaug data list` shows them), "
              "a version id, or a label; prepare_data is cached by it."),
    Parameter("data_source", "DATA_SOURCE", str, "data.source", "DATA_SOURCE=s3://incoming/parts/",
              "your dataset only: an S3 prefix (or folder) of class folders that the run snapshots first; new "
              "images make a new version, an unchanged source reuses the cached one."),
    Parameter("resolution", "RESOLUTION", int, "data.resolution", "RESOLUTION=64",
              "image side in pixels, 32, 64 or 128; unset: a built-in dataset's own, your data's derived from its "
              "images (at most the profile's: smoke 32, quick 64, full 128)", kfp_unset=0),
    Parameter("synth", "SYNTH", str, "synthesis.mode", "SYNTH=balance",
              "ratio (RATIO synthetic per real image, the same per class) or balance (top every class up to the "
              "largest, or to SYNTH_TARGET)."),
    Parameter("synth_target", "SYNTH_TARGET", int, "synthesis.target", "SYNTH_TARGET=6000",
              "SYNTH=balance only: images per class after the top-up; unset: the largest class's count",
              kfp_unset=0),
    Parameter("gate_metric", "GATE_METRIC", str, "promotion.metric", "GATE_METRIC=macro_f1",
              "what promotion compares classifiers on: accuracy, macro_f1 or balanced_accuracy."),
    Parameter("gan_early_stop", "GAN_EARLY_STOP", int, "gan.early_stop", "GAN_EARLY_STOP=1",
              "GANs only: 1 keeps the generator of the lowest FID, measured every few steps, and stops when it "
              "no longer improves; 0 trains every step and keeps the last", kfp_unset=-1),
)
BY_NAME = {p.name: p for p in PARAMETERS}
# The sections a RunConfig holds, in order; gan or diffusion and sampler are None when the
# generator's family does not use them.
SECTION_TYPES = {"data": DataConfig, "gan": GanConfig, "diffusion": DiffusionConfig, "sampler": SamplerConfig,
                 "synthesis": SynthesisConfig, "classifier": ClassifierConfig, "metrics": MetricsConfig,
                 "promotion": PromotionConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything one run does, resolved: written once as run_options.json (and as the
    pipeline's ``options`` artifact); each step is handed its section."""

    profile: str
    generator: str
    seed: int
    data: DataConfig
    gan: GanConfig | None
    diffusion: DiffusionConfig | None
    sampler: SamplerConfig | None
    synthesis: SynthesisConfig
    classifier: ClassifierConfig
    metrics: MetricsConfig
    promotion: PromotionConfig

    def __post_init__(self):
        problems = _run_problems(self.profile, self.generator, self.seed)
        if not problems:
            family = GENERATORS[self.generator]
            if (self.gan is None) != (family != "gan") or (self.diffusion is None) != (family != "diffusion") \
                    or (self.sampler is None) != (family != "diffusion"):
                problems.append(f"generator {self.generator!r} is a {family}: it takes the {family} section "
                                "(and a diffusion model its sampler), and no other family's")
            elif self.sampler is not None:
                try:
                    sampler_fits(self.sampler.steps, self.diffusion.timesteps)
                except ConfigError as err:
                    problems.append(str(err))
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def family(self) -> str:
        return GENERATORS[self.generator]

    def as_dict(self) -> dict:
        out = {"profile": self.profile, "generator": self.generator, "seed": self.seed}
        return {**out, **{k: None if (s := getattr(self, k)) is None else s.as_dict() for k in SECTION_TYPES}}

    @classmethod
    def from_dict(cls, values: dict) -> RunConfig:
        """The inverse of as_dict (run_options.json); checks everything again."""
        sections = {k: None if values.get(k) is None else t.from_dict(values[k]) for k, t in SECTION_TYPES.items()}
        return cls(values["profile"], values["generator"], values["seed"], **sections)

    def parameters(self) -> dict:
        """The run's parameters as resolved, by name (a sampler setting is None for a GAN, a GAN's
        setting None for a diffusion model), each of its parameter's type (a flag as 0 or 1)."""
        values = {p.name: _lookup(self, p.where) for p in PARAMETERS}
        return {p.name: int(values[p.name]) if isinstance(values[p.name], bool) and p.kind is int else values[p.name]
                for p in PARAMETERS}


def load_options(path: str) -> RunConfig:
    """The RunConfig in a run_options.json file (the pipeline's ``options`` artifact)."""
    with open(path) as f:
        return RunConfig.from_dict(json.load(f))


def write_options(config: RunConfig, path: str) -> None:
    """Write run_options.json at ``path`` whole or not at all (a reader never sees half)."""
    from genaug.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(config.as_dict(), f, indent=2)


def _lookup(config: RunConfig, where: str):
    section, _, name = where.partition(".")
    value = getattr(config, section)
    return value if not name else (None if value is None else getattr(value, name))


def _run_problems(profile, generator, seed) -> list[str]:
    problems = []
    for kind, value, valid in (("generator", generator, GENERATORS), ("profile", profile, PROFILES)):
        try:
            choose(kind, value, valid)
        except ValueError as err:
            problems.append(str(err))
    if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED):
        problems.append(f"seed {seed!r} must be an integer from 0 to 2^63-1, e.g. SEED=0")
    return problems


def _cast(p: Parameter, value):
    """``value`` as ``p.kind``: "50" and 50.0 are the integer 50, "0.5" the float 0.5."""
    if p.kind is str:
        if not isinstance(value, str):
            raise ValueError
        return value
    if isinstance(value, bool):
        raise ValueError
    if p.kind is int and isinstance(value, int):
        return value
    if p.kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    number = float(value)
    if p.kind is int:
        if not math.isfinite(number) or number != int(number):
            raise ValueError
        return int(number)
    return number  # NaN and infinities too: the section's range check names them with the range


def _unset(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def resolve(params: dict | None = None) -> RunConfig:
    """The RunConfig of ``params`` (parameter name -> value; a missing, None or empty value
    takes the default, which for a sampler setting is the profile's). Values may be strings,
    as make and a CLI give them. Raises ConfigError naming every problem at once."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(BY_NAME))
    if unknown:
        raise ConfigError(f"unknown parameter {', '.join(map(repr, unknown))}; the parameters are "
                          f"{', '.join(BY_NAME)}")
    problems, values = [], {}
    for p in PARAMETERS:
        raw = params.get(p.name)
        if _unset(raw):
            values[p.name] = None
            continue
        try:
            values[p.name] = _cast(p, raw)
        except (TypeError, ValueError, OverflowError):
            kind = {int: "an integer", float: "a finite number", str: "text"}[p.kind]
            problems.append(f"{p.name} {raw!r} must be {kind}, e.g. {p.example}")
            values[p.name] = None
    run = {p.name: p.default if values[p.name] is None else values[p.name] for p in PARAMETERS if p.default is not None}
    problems += _run_problems(run["profile"], run["generator"], run["seed"])
    profile = PROFILES.get(run["profile"], PROFILES[BY_NAME["profile"].default])
    family = GENERATORS.get(run["generator"])

    def section(name: str, base):
        """``base`` with the user's overrides of section ``name``; None (recorded) if that fails."""
        overrides = {p.where.split(".")[1]: values[p.name] for p in PARAMETERS
                     if p.where.startswith(name + ".") and values[p.name] is not None}
        try:
            return replace(base, **overrides)
        except ConfigError as err:
            problems.append(str(err))
            return None

    data = section("data", profile.data)
    gan = section("gan", profile.gan)
    if family == "diffusion" and values["gan_early_stop"]:
        problems.append(f"gan_early_stop {values['gan_early_stop']!r} applies to the GANs only: {run['generator']} "
                        "is a diffusion model, which trains all its steps and samples with its EMA weights; drop "
                        "GAN_EARLY_STOP or choose a GAN, e.g. GEN=dcgan")
    # A GAN ignores the sampler settings, but they are checked all the same: a typo fails now.
    sampler = section("sampler", replace(profile.sampler, kind=run["generator"] if family == "diffusion" else "ddim"))
    if sampler is not None:
        try:
            sampler_fits(sampler.steps, profile.diffusion.timesteps)
        except ConfigError as err:
            problems.append(str(err))
    synthesis = section("synthesis", SynthesisConfig())
    classifier = section("classifier", profile.classifier)
    promotion = section("promotion", PromotionConfig())
    if data is not None and run["generator"] == "vanilla_gan" and (data.resolution or 0) > MLP_GAN_MAX_SIDE:
        problems.append(mlp_too_large(data.resolution, data.resolution))
    if data is not None and synthesis is not None and data.built_in and synthesis.mode == "ratio":  # a user dataset's size is the registry's
        problems += _synthetic_count_problems(data, synthesis.ratio, profile.name)
    if problems:
        raise ConfigError("; ".join(problems))
    return RunConfig(profile.name, run["generator"], run["seed"], data, gan if family == "gan" else None, profile.diffusion if family == "diffusion" else None,
                     sampler if family == "diffusion" else None, synthesis, classifier, profile.metrics, promotion)


def _synthetic_count_problems(data: DataConfig, ratio: float, profile: str) -> list[str]:
    """A ratio so small that no class would get a single synthetic image is an error."""
    num_classes = DATASETS[data.dataset].num_classes
    _, n_real = data.train_counts()
    if round(ratio * n_real / num_classes) >= 1:  # as genaug.data.mixing computes it
        return []
    return [f"ratio {ratio!r} gives 0 synthetic images per class ({n_real} real training images in "
            f"{num_classes} classes at profile {profile}, fraction {data.fraction:g}); "
            f"RATIO={num_classes / n_real:.2g} gives one per class"]


def pipeline_arguments(params: dict | None = None, config: RunConfig | None = None) -> dict:
    """The pipeline's arguments for the user's ``params``: every parameter resolved, except
    that a setting left to the profile stays unset, as KFP's stand-in (KFP_UNSET_WHY), so
    the run's page shows what the user asked for. ``config``: ``resolve(params)``, when the
    caller has it already."""
    params = dict(params or {})
    resolved = (config or resolve(params)).parameters()
    return {p.name: resolved[p.name] if p.kfp_unset is None else
            p.kfp_unset if _unset(params.get(p.name)) else _cast(p, params[p.name]) for p in PARAMETERS}


def resolve_pipeline_arguments(arguments: dict) -> RunConfig:
    """resolve() of a pipeline run's arguments: KFP's stand-ins for "the profile's" read as
    unset, whether they arrive as numbers or, as KFP hands a dict's values to a task, as text."""
    def stand_in(name: str, value) -> bool:
        p = BY_NAME.get(name)
        try:
            return p is not None and p.kfp_unset is not None and float(value) == float(p.kfp_unset)
        except (TypeError, ValueError):
            return False

    return resolve({k: None if stand_in(k, v) else v for k, v in arguments.items()})


DEFAULTS = resolve()


def default(name: str):
    """A parameter's default: what the default profile resolves it to (None for the profile's)."""
    p = BY_NAME[name]
    return p.kfp_unset if p.kfp_unset is not None else _lookup(DEFAULTS, p.where)


def kfp_help(p: Parameter) -> str:
    """The parameter's description in the KFP UI, where "unset" is KFP's stand-in."""
    return p.help if p.kfp_unset is None else f"{p.help}; {p.kfp_unset:g} = the profile's."


def pipeline_docstring(summary: str, extra: dict[str, str]) -> str:
    """A pipeline function's docstring: ``summary`` and an Args section with every parameter's
    description (KFP compiles them into the parameters' descriptions), then ``extra``'s."""
    args = [f"        {p.name}: {kfp_help(p)}" for p in PARAMETERS] + [f"        {k}: {v}" for k, v in extra.items()]
    return f"{summary}\n\n    Args:\n" + "\n".join(args) + "\n    "


def add_arguments(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """One --name option per parameter (only those in ``names`` when given), defaulting to
    unset (resolve fills in the default)."""
    for p in PARAMETERS:
        if names is None or p.name in names:
            parser.add_argument(f"--{p.name}", default=None, metavar=p.make, help=p.help)


def parameters_help() -> str:
    """The parameter table that `make help` prints."""
    rows = [(p.make, "the profile's" if p.kfp_unset is not None else str(default(p.name)), p.help.rstrip("."))
            for p in PARAMETERS]
    width = max(len(r[0]) for r in rows) + 2, max(len(r[1]) for r in rows) + 2
    return "\n".join(f"  {a:<{width[0]}}{b:<{width[1]}}{c}" for a, b, c in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Resolve and check genaug run parameters.")
    add_arguments(parser)
    parser.add_argument("--print", dest="show", default="0",
                        help="1: print the resolved configuration as JSON (make pipeline DRY_RUN=1)")
    parser.add_argument("--field", default="", help="print one resolved value, e.g. data.dataset")
    args = vars(parser.parse_args(argv))
    show, field = args.pop("show"), args.pop("field")
    try:
        config = resolve(args)
    except ConfigError as err:
        print(f"genaug: invalid parameters: {err}", file=sys.stderr)
        return 2
    if field:
        print(_lookup(config, field))
    elif show.strip() not in ("", "0"):
        print(json.dumps(config.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
