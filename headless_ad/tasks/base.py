"""What an environment family provides to the shared pipeline."""

from __future__ import annotations

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

    def train_suite(self, num_instances: int, horizon: int, seed: int) -> Suite: ...

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
