"""What an environment family provides to the shared pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from headless_ad.learners import Learner
from headless_ad.model import ObservationKind
from headless_ad.rollout import Rollout


class Suite(Protocol):
    """A reproducible set of environment instances (training set or an evaluation suite)."""

    num_instances: int
    horizon: int
    seed: int

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters, saved with histories and results."""
        ...


class Task(Protocol):
    name: str
    observation_kind: ObservationKind
    observation_size: int
    source_algorithm: str
    """The learner whose histories are distilled; also the reference for the normalized score."""
    baselines: tuple[str, ...]
    """Learners run beside the model in evaluation, on the same instances and seeds."""
    default_eval_suites: tuple[str, ...]
    metric_name: str
    """What `metric` measures (e.g. final cumulative regret); normalized scores compare it."""
    curve_labels: tuple[str, str]
    episodic: bool
    """Histories hold many episodes (their ends recorded); a bandit's is one long episode."""

    def train_suite(self, num_instances: int, horizon: int, seed: int, options: str = "") -> Suite:
        """The training instances; `options` are the task's own `key=value,...` changes to its
        default training suite (e.g. a fixed arm count), from `--collect.train-suite`."""
        ...

    def parse_suite(self, spec: str, num_instances: int, horizon: int, train_seed: int) -> Suite:
        """A named evaluation suite (e.g. `all_new`) or a custom `key=value,...` spec."""
        ...

    def make_env(self, suite: Suite, rows: slice | None = None) -> gym.vector.VectorEnv:
        """All instances of the suite, or only `rows` of them (instance i depends only on the
        suite's seed and i, so parts of a suite can be built separately)."""
        ...

    def make_learner(self, name: str, env: gym.vector.VectorEnv, suite: Suite, rng: np.random.Generator) -> Learner: ...

    def metric(self, rollout: Rollout) -> float:
        """One number per rollout, averaged over instances."""
        ...

    def curve(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the mean learning curve, for figures."""
        ...

    # Optional: `extra_metrics(suite, rollout) -> dict[str, float]`, further numbers reported per
    # agent under the main table (Darkroom: which actions were tried on the all-actions suites).


SpecKey = Callable[[str], dict[str, Any]]
"""Converts one `key=value` of a suite spec into suite fields (a key may set several)."""


def suite_field(name: str, convert: Callable[[str], Any]) -> SpecKey:
    """A spec key that sets one suite field."""
    return lambda value: {name: convert(value)}


def arms_range(value: str) -> dict[str, int]:
    """`arms=50` or `arms=4-20`: the range the instances' arm counts are drawn from."""
    low, _, high = value.partition("-")
    return {"min_arms": int(low), "max_arms": int(high or low)}


def apply_spec(spec: str, base: Any, keys: dict[str, SpecKey], what: str = "suite spec") -> Any:
    """`base` (a frozen dataclass) with the `key=value,...` pairs of `spec` applied; a bad key or
    value names itself and the spec. Empty `spec`: `base` unchanged."""
    fields: dict[str, Any] = {}
    for item in filter(None, spec.split(",")):
        key, separator, value = item.partition("=")
        if key not in keys or not separator:
            raise ValueError(f"unknown key {key!r} in {what} {spec!r}; keys: {', '.join(keys)}")
        try:
            fields.update(keys[key](value))
        except SpecRangeError as error:
            raise ValueError(f"{what} {spec!r}: {item} {error}") from None
        except ValueError:
            raise ValueError(f"bad value {value!r} for {key!r} in {what} {spec!r}") from None
    try:
        return replace(base, **fields)
    except ValueError as error:  # the suite's own checks (e.g. an empty arm range)
        raise ValueError(f"{what} {spec!r}: {error}") from None


class SpecRangeError(ValueError):
    """A spec value of the right type outside its range."""


def at_least(minimum: int) -> Callable[[str], int]:
    """Converts a spec value to an int no smaller than `minimum`."""

    def convert(value: str) -> int:
        number = int(value)
        if number < minimum:
            raise SpecRangeError(f"must be >= {minimum}")
        return number

    return convert


def check_arms_suite(num_instances: int, min_arms: int, max_arms: int, horizon: int) -> None:
    """What every suite of a bandit family needs: at least 2 arms, a non-empty range, instances, steps."""
    if min_arms < 2:
        raise ValueError(f"a bandit needs at least 2 arms, got min_arms={min_arms}")
    if max_arms < min_arms:
        raise ValueError(f"max_arms={max_arms} is below min_arms={min_arms}")
    if num_instances < 1 or horizon < 1:
        raise ValueError("num_instances and horizon must be >= 1")


def parse_arms_suite(
    spec: str,
    base: Any,
    named: dict[str, Any],
    family: str,
    extra_keys: dict[str, SpecKey],
) -> Any:
    """Suites of families whose instances differ in their number of arms: a name from `named`,
    `num_<arms>` (seed base.seed + arms), or `key=value,...` pairs over `base` with keys arms
    (`arms=50` or `arms=4-20`), instances, seed, horizon and the family's `extra_keys`."""
    if spec in named:
        return named[spec]
    if spec.startswith("num_") and spec[4:].isdigit():
        arms = int(spec[4:])
        return replace(base, min_arms=arms, max_arms=arms, seed=base.seed + arms)
    if "=" not in spec:
        raise ValueError(
            f"unknown {family} suite {spec!r}; use one of {', '.join(named)}, num_<arms> or key=value pairs"
        )
    keys = {
        "arms": arms_range,
        "instances": suite_field("num_instances", at_least(1)),
        "seed": suite_field("seed", at_least(0)),
        "horizon": suite_field("horizon", at_least(1)),
        **extra_keys,
    }
    return apply_spec(spec, base, keys)
