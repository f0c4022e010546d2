"""Bernoulli bandits with 4-20 arms (train) and up to 100 (evaluation), as in the paper."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any, ClassVar, Literal

import numpy as np

from envs.bandit import BernoulliBanditVectorEnv
from headless_ad.learners import UCB, Learner, RandomLearner, ThompsonSampling
from headless_ad.rollout import Rollout
from headless_ad.tasks.base import (
    SpecKey,
    Task,
    apply_spec,
    arms_range,
    check_arms_suite,
    parse_arms_suite,
    suite_field,
)

MeanDistribution = Literal["skewed", "inverse", "uniform"]

THOMPSON_POLICY_DRAWS = 64
"""Posterior draws per step with which the `thompson_policy` source estimates Thompson Sampling's
arm probabilities for --policy-targets (collection then costs about this many times as much)."""


@dataclass(frozen=True)
class BanditSuite:
    num_instances: int
    min_arms: int = 4
    max_arms: int = 20
    means: MeanDistribution = "skewed"
    """skewed: 95% of instances have high means U(0.5, 1) on odd arms and low U(0, 0.5) on even
    arms, 5% the reverse (the paper's training set); inverse: the same with 95% reversed;
    uniform: every mean U(0, 1)."""
    horizon: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        check_arms_suite(self.num_instances, self.min_arms, self.max_arms, self.horizon)
        if self.means not in ("skewed", "inverse", "uniform"):
            raise ValueError(f"unknown mean distribution {self.means!r}")

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(num_arms (N,), means (N, max_arms)). Row i depends only on the seed and i, so a
        smaller suite with the same seed is a prefix of a larger one."""
        columns = 2 + self.max_arms
        draws = np.random.default_rng(self.seed).random((self.num_instances, columns))
        num_arms = self.min_arms + np.floor(draws[:, 0] * (self.max_arms - self.min_arms + 1)).astype(np.int64)
        uniform = draws[:, 2:]
        if self.means == "uniform":
            return num_arms, uniform
        share_odd_high = 0.95 if self.means == "skewed" else 0.05
        odd_high = draws[:, 1] < share_odd_high
        odd_arm = (np.arange(self.max_arms) % 2 == 1)[None, :]
        high = odd_arm == odd_high[:, None]
        return num_arms, np.where(high, 0.5 + 0.5 * uniform, 0.5 * uniform)


class BanditTask(Task):
    name = "bandit"
    observation_kind = "none"
    source_algorithm = "thompson"
    baselines = ("thompson", "ucb", "random")
    default_eval_suites = ("train", "inverse", "all_new", "num_25", "num_30", "num_40", "num_50", "num_100")
    metric_name = "regret"
    curve_labels = ("environment step", "cumulative regret")
    episodic = False

    train_suite_keys: ClassVar[dict[str, SpecKey]] = {"arms": arms_range, "means": suite_field("means", str)}
    """`--collect.train-suite` keys: arms=10 (one arm count, as AD trained per action set needs) or
    arms=4-20, means=skewed|inverse|uniform."""

    def train_suite(self, num_instances: int, horizon: int, seed: int, options: str = "") -> BanditSuite:
        base = BanditSuite(num_instances=num_instances, horizon=horizon, seed=seed)
        return apply_spec(options, base, self.train_suite_keys, "--collect.train-suite")

    def parse_suite(self, spec: str, num_instances: int, horizon: int, train_seed: int) -> BanditSuite:
        """Named suites of the paper, or `arms=50,means=uniform,instances=100,seed=7`
        (`arms=4-20` for a range)."""
        base = BanditSuite(num_instances=num_instances, horizon=horizon, means="uniform", seed=1_000)
        named = {
            "train": replace(base, means="skewed", seed=train_seed),
            "inverse": replace(base, means="inverse", seed=1_001),
            "all_new": replace(base, seed=1_002),
        }
        return parse_arms_suite(spec, base, named, "bandit", {"means": suite_field("means", str)})

    def observation_size(self, suite: BanditSuite) -> int:
        return 0

    def make_env(self, suite: BanditSuite, rows: slice | None = None) -> BernoulliBanditVectorEnv:
        num_arms, means = suite.sample()
        if rows is not None:
            num_arms, means = num_arms[rows], means[rows]
        means = means[:, : num_arms.max()]  # a small suite may not reach max_arms
        return BernoulliBanditVectorEnv(len(num_arms), means=means, num_arms=num_arms, horizon=suite.horizon)

    def make_learner(
        self, name: str, env: BernoulliBanditVectorEnv, suite: BanditSuite, rng: np.random.Generator
    ) -> Learner:
        learners = {
            "thompson": ThompsonSampling,
            # The same algorithm, also recording its arm probabilities (for --policy-targets).
            "thompson_policy": partial(ThompsonSampling, policy_draws=THOMPSON_POLICY_DRAWS),
            "ucb": UCB,
            "random": RandomLearner,
        }
        if name not in learners:
            raise ValueError(f"unknown bandit learner {name!r}; known: {', '.join(learners)}")
        return learners[name](env.action_mask, rng)

    def metric(self, rollout: Rollout) -> float:
        """Mean over instances of the cumulative regret at the last step."""
        return float(rollout.regrets.sum(axis=1).mean())

    def curve(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        curve = rollout.regrets.cumsum(axis=1).mean(axis=0)
        return np.arange(1, curve.size + 1), curve

    def instance_metrics(self, rollout: Rollout) -> np.ndarray:
        """(N,) cumulative regret of each instance at the last step; `metric` is their mean."""
        return rollout.regrets.sum(axis=1)

    def instance_curves(self, rollout: Rollout) -> tuple[np.ndarray, np.ndarray]:
        """(x, (N, T)) cumulative regret of each instance per step; `curve` is their mean."""
        curves = rollout.regrets.cumsum(axis=1)
        return np.arange(1, curves.shape[1] + 1), curves
