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

    def train_suite(self, num_instances: int, horizon: int, seed: int, min_actions: int = 0) -> Suite:
        """The training instances; `min_actions` > 0 asks for random action subsets of at least
        that many (tasks whose instances cannot vary so reject it)."""
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
    extra_keys: dict[str, tuple[str, Callable[[str], Any]]],
) -> Any:
    """Suites of families whose instances differ in their number of arms: a name from `named`,
    `num_<arms>` (seed base.seed + arms), or `key=value,...` pairs over `base` with keys arms
    (`arms=50` or `arms=4-20`), instances, seed, horizon and the family's `extra_keys`
    (key -> (suite field, converter))."""
    if spec in named:
        return named[spec]
    if spec.startswith("num_") and spec[4:].isdigit():
        arms = int(spec[4:])
        return replace(base, min_arms=arms, max_arms=arms, seed=base.seed + arms)
    if "=" not in spec:
        raise ValueError(
            f"unknown {family} suite {spec!r}; use one of {', '.join(named)}, num_<arms> or key=value pairs"
        )
    keys = {"instances": ("num_instances", int), "seed": ("seed", int), "horizon": ("horizon", int), **extra_keys}
    fields: dict[str, Any] = {}
    for item in spec.split(","):
        key, _, value = item.partition("=")
        try:
            if key == "arms":
                low, _, high = value.partition("-")
                fields["min_arms"], fields["max_arms"] = int(low), int(high or low)
            elif key in keys:
                name, convert = keys[key]
                fields[name] = convert(value)
            else:
                raise KeyError(key)
        except KeyError:
            raise ValueError(f"unknown key {key!r} in suite spec {spec!r} (arms, {', '.join(keys)})") from None
        except ValueError:
            raise ValueError(f"bad value {value!r} for {key!r} in suite spec {spec!r}") from None
    return replace(base, **fields)
