"""The experiment's configurations, as one flat list for one ParallelFor.

Standard library only, so a bad list fails in well under a second, at submit time.

A configuration trains one classifier once:
- ``real``: ratio 0, the real-only baseline of its (classifier, fraction, seed);
- ``augmented``: real plus ratio * n_real synthetic images, paired with the baseline of the
  same seed (same initialisation and data order), so the difference is per seed;
- ``synthetic``: one per arm, the synthetic set alone (CAS, Ravuri & Vinyals 2019).
Every (fraction, generator seed) is an *arm*: the fraction's own real subset, and a
generator trained on that subset only (a generator that saw all the data would smuggle it
into the small-data regime) with that seed. Each classifier seed pairs with each generator
seed: the augmented runs of every arm are paired with the same real-only baselines, which
do not depend on a generator, so the baselines train once per (classifier, fraction, seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field

from genaug.catalog import CLASSIFIERS, GENERATORS, choose, dataset_problem
from genaug.params import ParamError, add_arguments, default, resolve
from genaug.profiles import PROFILES
from genaug.sections import MAX_RATIO

# The run parameters (genaug.params) that the experiment takes beside its lists; every arm
# runs with them. The others are the experiment's own (dataset, generator, profile) or are
# swept (seed, ratio, fraction, classifier).
RUN_PARAMETERS = ("sample_steps", "eta", "guidance", "data_version", "gan_early_stop")
CAS_CLASSIFIER = "cnn"   # the classifier that scores synthetic-only training (CAS)
MIN_SEEDS_FOR_INTERVAL = 2
# With filtering on, synthesize this many times the largest ratio, so that enough
# confident samples of every class remain.
FILTER_OVERSAMPLE = 2.0


@dataclass(frozen=True)
class ExperimentParams:
    dataset: str
    generator: str
    profile: str
    ratios: tuple[float, ...]
    seeds: tuple[int, ...]
    classifiers: tuple[str, ...]
    fractions: tuple[float, ...]
    filter_threshold: float = 0.0   # keep synthetic images the real classifier gives p(label) > this
    generator_seeds: tuple[int, ...] = (0,)

    @property
    def generator_seed(self) -> int:
        """The first generator seed: the arms' RunConfig's seed (each arm replaces it)."""
        return self.generator_seeds[0]

    @property
    def max_ratio(self) -> float:
        return max(self.ratios)

    @property
    def synthesis_ratio(self) -> float:
        """How many synthetic images per real one each arm synthesizes."""
        return self.max_ratio * (FILTER_OVERSAMPLE if self.filter_threshold > 0 else 1.0)

    def as_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _listed(value, cast, name: str, example: str, problems: list) -> tuple:
    """A list parameter given as a list, a JSON list or a comma-separated string."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
        except json.JSONDecodeError:
            problems.append(f"{name} {value!r} is not a list; give it as {example}")
            return ()
    try:
        out = tuple(cast(v.strip() if isinstance(v, str) else v) for v in value)
    except (TypeError, ValueError):
        problems.append(f"{name} {value!r} must be a list of {cast.__name__}s, e.g. {example}")
        return ()
    if not out:
        problems.append(f"{name} is empty; give at least one value, e.g. {example}")
    if len(set(out)) != len(out):
        problems.append(f"{name} {list(out)} repeats a value; each must appear once")
    return out


def _checked(value, cast, ok, problem: str, problems: list):
    """``cast(value)`` when that works and passes ``ok``; otherwise ``problem`` is appended to
    ``problems`` and ``value`` comes back as it was."""
    try:
        out = cast(value)
        if ok(out):
            return out
    except (TypeError, ValueError):
        pass
    problems.append(problem)
    return value


def _int(v) -> int:
    f = float(v)
    if f != int(f):
        raise ValueError(v)
    return int(f)


def validate(dataset: str | None = None, generator: str | None = None, profile: str | None = None, ratios=None,
             seeds=None, classifiers=None, fractions=None, filter_threshold: float | None = None,
             generator_seeds=None) -> ExperimentParams:
    """Check every experiment parameter (lists may be lists, JSON or "a,b,c"); None takes the
    default (for the lists, the profile's). Raises ParamError listing every problem at once."""
    dataset = default("dataset") if dataset is None else dataset
    generator = default("generator") if generator is None else generator
    profile = default("profile") if profile is None else profile
    filter_threshold = 0.0 if filter_threshold is None else filter_threshold
    problems = []
    if problem := dataset_problem(dataset):  # a user's dataset: only its form here; the registry in the run
        problems.append(problem)
    for kind, value, valid in (("generator", generator, GENERATORS), ("profile", profile, PROFILES)):
        try:
            choose(kind, value, valid)
        except ValueError as err:
            problems.append(str(err))
    prof = PROFILES.get(profile, PROFILES["quick"]).experiment
    ratios = _listed(prof.ratios if ratios is None else ratios, float, "ratios", "RATIOS=0,0.5,1", problems)
    seeds = _listed(prof.seeds if seeds is None else seeds, _int, "seeds", "SEEDS=0,1,2", problems)
    classifiers = _listed(prof.classifiers if classifiers is None else classifiers, str, "classifiers",
                          "CLASSIFIERS=cnn,shallow_mlp", problems)
    fractions = _listed(prof.fractions if fractions is None else fractions, float, "fractions",
                        "FRACTIONS=0.1,1", problems)
    generator_seeds = _listed(prof.generator_seeds if generator_seeds is None else generator_seeds, _int,
                              "generator seeds", "GEN_SEEDS=0,1,2", problems)
    bad = [r for r in ratios if not 0.0 <= r <= MAX_RATIO]
    if bad:
        problems.append(f"ratios {bad} out of range; each r = n_synthetic / n_real must be in [0, {MAX_RATIO:g}]")
    if ratios and max(ratios) <= 0:
        problems.append(f"ratios {list(ratios)} hold no augmented setting; add one above 0, e.g. RATIOS=0,0.5")
    if ratios and 0.0 not in ratios:
        ratios = (0.0, *ratios)  # the real-only baseline that every difference is taken against
    for name, values in (("seeds", seeds), ("generator seeds", generator_seeds)):
        if any(s < 0 for s in values):
            problems.append(f"{name} {list(values)} must be non-negative integers")
    for c in classifiers:
        try:
            choose("classifier", c, CLASSIFIERS)
        except ValueError as err:
            problems.append(str(err))
    bad = [f for f in fractions if not 0.0 < f <= 1.0]
    if bad:
        problems.append(f"fractions {bad} out of range; each is a share of the real training images in (0, 1]")
    filter_threshold = _checked(filter_threshold, float, lambda v: 0.0 <= v < 1.0,
                               f"filter_threshold {filter_threshold!r} must be in [0, 1): 0 keeps every synthetic "
                               "image, 0.9 keeps those the real classifier assigns to their label with p > 0.9",
                               problems)
    if problems:
        raise ParamError("; ".join(problems))
    return ExperimentParams(dataset, generator, profile, tuple(sorted(ratios)), seeds, classifiers,
                            tuple(sorted(fractions)), filter_threshold, generator_seeds)


@dataclass(frozen=True)
class Config:
    classifier: str
    fraction: float
    ratio: float
    seed: int
    variant: str = field(default="augmented")   # real | augmented | synthetic
    generator_seed: int | None = None           # None for real-only: no generator is involved

    @property
    def name(self) -> str:
        arm = "" if self.generator_seed is None else f"-g{self.generator_seed}"
        return f"{self.variant}-{self.classifier}-f{self.fraction:g}-r{self.ratio:g}-s{self.seed}{arm}"


def arms(p: ExperimentParams) -> list[dict]:
    """One per (fraction, generator seed): the first loop's items."""
    return [{"fraction": f, "generator_seed": g, "name": f"f{f:g}-g{g}"} for f in p.fractions
            for g in p.generator_seeds]


def configurations(p: ExperimentParams) -> list[dict]:
    """The flat list: every real-only (classifier, fraction, seed); every augmented
    (classifier, fraction, ratio, seed, generator seed); one CAS run per arm."""
    out = [Config(c, f, 0.0, s, "real") for f in p.fractions for c in p.classifiers for s in p.seeds]
    out += [Config(c, f, r, s, "augmented", g) for f in p.fractions for c in p.classifiers
            for r in p.ratios if r > 0 for g in p.generator_seeds for s in p.seeds]
    out += [Config(CAS_CLASSIFIER, arm["fraction"], 0.0, p.seeds[0], "synthetic", arm["generator_seed"])
            for arm in arms(p)]
    # A real-only configuration has no generator_seed key at all: KFP passes no nulls.
    return [{**{k: v for k, v in asdict(c).items() if v is not None}, "name": c.name} for c in out]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate and print an experiment's configurations.")
    for name in ("dataset", "generator", "profile"):
        parser.add_argument(f"--{name}", default=None, help=f"default: {default(name)}")
    for name in ("ratios", "seeds", "classifiers", "fractions"):
        parser.add_argument(f"--{name}", default=None, help="comma-separated; default: the profile's")
    parser.add_argument("--filter_threshold", default=None)
    parser.add_argument("--generator_seeds", default=None, help="comma-separated; default: the profile's")
    add_arguments(parser, RUN_PARAMETERS)
    parser.add_argument("--print", action="store_true", help="print the resolved configuration list")
    args = vars(parser.parse_args(argv))
    show = args.pop("print")
    run_parameters = {k: args.pop(k) for k in RUN_PARAMETERS}
    try:
        params = validate(**{k: (v if v != "" else None) for k, v in args.items()})
        resolve({"dataset": params.dataset, "generator": params.generator, "profile": params.profile,
                 **run_parameters})
    except ParamError as err:
        print(f"genaug: invalid experiment parameters: {err}", file=sys.stderr)
        return 2
    if show:
        configs = configurations(params)
        print(json.dumps({**params.as_dict(), "n_configurations": len(configs)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
