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
    """An environment family: what the shared collector, trainer and evaluator need of it.

    A task from outside this package plugs in the same way as ours (`--task package.module:Task`,
    or the `headless_ad.tasks` entry-point group; see `headless_ad.tasks.get_task`). Subclass
    `Task` to inherit the defaults of its optional hooks (`extra_metrics`).
    """

    name: str
    observation_kind: ObservationKind
    """none (bandits), discrete (integer observations below `observation_size`), continuous (vectors)."""
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

    def observation_size(self, suite: Suite) -> int:
        """Number of discrete observations, or the dimension of continuous ones, in `suite`'s
        instances (0 without observations). The model is built for the training suite's."""
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

    # Optional hooks: a default here, so a task that subclasses `Task` need not define them.

    can_render: bool = False
    """Whether `render_episodes` can draw this task's instances (for `evaluate --gifs`)."""

    def render_episodes(self, suite: Suite, rollout: Rollout, instance: int, episodes: list[int]) -> list[np.ndarray]:
        """Optional, with `can_render`: (H, W, 3) uint8 frames of the given episodes of one
        instance's rollout (the start of each, then one frame per step), replayed in a drawable env."""
        raise NotImplementedError(f"task {self.name!r} cannot draw its instances")

    def extra_metrics(self, suite: Suite, rollout: Rollout) -> dict[str, float]:
        """Optional: further numbers reported per agent under the main table (Darkroom: which
        actions were tried on the all-actions suites). Default: none."""
        return {}

    def instance_metrics(self, rollout: Rollout) -> np.ndarray | None:
        """Optional: (N,) the metric per instance (`metric` is their mean), saved by `evaluate` for
        reports with bootstrap confidence intervals. Default: None (no per-instance results)."""
        return None

    def instance_curves(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray] | None:
        """Optional: (x, (N, L)) the learning curve per instance. Default: None."""
        return None

    def extra_curves(self, suite: Suite, rollout: Rollout) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Optional: further named per-instance curves {name: (x, (N, L))}, saved by `evaluate` and
        drawn by `report` (Darkroom: the share of train and of test actions tried, over episodes, on
        the all-actions suites). Default: none."""
        return {}


OPTIONAL_HOOKS = (
    "extra_metrics", "can_render", "render_episodes", "instance_metrics", "instance_curves", "extra_curves",
)  # fmt: skip
"""Members of `Task` with a default: inherited by subclasses, so the shared code calls them directly."""


def task_members() -> list[str]:
    """Every member `Task` declares (attributes and methods), in declaration order."""
    annotated = [name for name in Task.__annotations__ if not name.startswith("_")]
    methods = [name for name, value in vars(Task).items() if callable(value) and not name.startswith("_")]
    return list(dict.fromkeys([*annotated, *methods]))


def missing_members(task: object) -> list[str]:
    """The members of `Task` that `task` lacks (empty: it satisfies the protocol)."""
    return [name for name in task_members() if not hasattr(task, name)]


def check_observation_size(task: Task, suite: Suite, expected: int, what: str) -> None:
    """A model acts only in suites whose observations are the size it was built for; `what`
    names the suite as the user gave it (e.g. `--suites 'dim=3'`)."""
    size = task.observation_size(suite)
    if size != expected:
        raise ValueError(f"{what} has observation size {size}, the model's is {expected} (its training suite's)")


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
