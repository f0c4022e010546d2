"""Linear contextual bandits with 4-20 arms (train) and up to 100 (evaluation), the paper's third setting.

Every instance has its own arm embeddings in R^dim; each step shows a fresh context x and arm a
pays N(<e_a, x>, 1). LinUCB produces the histories; the model sees the context as a continuous
observation. Regret is measured against the best arm *in each step's context*.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import numpy as np

from envs.contextual_bandit import ContextualBanditVectorEnv
from headless_ad.learners import Learner, LinUCB, RandomLearner
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


@dataclass(frozen=True)
class ContextualBanditSuite:
    num_instances: int
    min_arms: int = 4
    max_arms: int = 20
    dim: int = 2
    """Context and embedding dimension: the model's observation size, so a model acts only in
    suites of the dimension it was trained on."""
    embedding_scale: float = 1.0
    """Arm embeddings are embedding_scale * N(0, 1/dim) per coordinate; 2 doubles every expected reward."""
    horizon: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        check_arms_suite(self.num_instances, self.min_arms, self.max_arms, self.horizon)
        if self.dim < 1:
            raise ValueError(f"the context dimension must be >= 1, got dim={self.dim}")
        if not np.isfinite(self.embedding_scale) or self.embedding_scale <= 0:
            raise ValueError(f"embedding_scale must be finite and > 0, got {self.embedding_scale}")

    def describe(self) -> dict[str, Any]:
        return asdict(self)

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """(num_arms (N,), embeddings (N, max_arms, dim)). Row i depends only on the seed and i,
        so a smaller suite with the same seed is a prefix of a larger one."""
        # Separate streams for counts and embeddings: each fills its array row by row.
        counts_seed, embeddings_seed = np.random.SeedSequence(self.seed).spawn(2)
        draws = np.random.default_rng(counts_seed).random(self.num_instances)
        num_arms = self.min_arms + np.floor(draws * (self.max_arms - self.min_arms + 1)).astype(np.int64)
        scale = self.embedding_scale / np.sqrt(self.dim)
        shape = (self.num_instances, self.max_arms, self.dim)
        return num_arms, np.random.default_rng(embeddings_seed).normal(0.0, scale, shape)


class ContextualBanditTask(Task):
    name = "contextual_bandit"
    observation_kind = "continuous"
    source_algorithm = "linucb"
    baselines = ("linucb", "random")
    default_eval_suites = (
        "train", "eval", "eval_scaled", "num_20", "num_25", "num_30", "num_40", "num_50", "num_100",
    )  # fmt: skip
    metric_name = "regret"
    curve_labels = ("environment step", "cumulative regret")
    episodic = False

    train_suite_keys: ClassVar[dict[str, SpecKey]] = {
        "arms": arms_range,
        "scale": suite_field("embedding_scale", float),
        "dim": suite_field("dim", int),
    }
    """`--collect.train-suite` keys: arms=10 (one arm count) or arms=4-20, scale (arm embedding scale),
    dim (context dimension; evaluation suites then need the same dim)."""

    def train_suite(self, num_instances: int, horizon: int, seed: int, options: str = "") -> ContextualBanditSuite:
        base = ContextualBanditSuite(num_instances=num_instances, horizon=horizon, seed=seed)
        return apply_spec(options, base, self.train_suite_keys, "--collect.train-suite")

    def parse_suite(self, spec: str, num_instances: int, horizon: int, train_seed: int) -> ContextualBanditSuite:
        """Named suites (train, eval, eval_scaled, num_<arms>), or
        `arms=50,scale=2,dim=2,instances=100,seed=7` (`arms=4-20` for a range)."""
        base = ContextualBanditSuite(num_instances=num_instances, horizon=horizon, seed=3_000)
        named = {
            "train": replace(base, seed=train_seed),
            "eval": replace(base, seed=3_001),
            "eval_scaled": replace(base, embedding_scale=2.0, seed=3_002),
        }
        return parse_arms_suite(
            spec,
            base,
            named,
            "contextual bandit",
            {"scale": suite_field("embedding_scale", float), "dim": suite_field("dim", int)},
        )

    def observation_size(self, suite: ContextualBanditSuite) -> int:
        return suite.dim

    def make_env(self, suite: ContextualBanditSuite, rows: slice | None = None) -> ContextualBanditVectorEnv:
        num_arms, embeddings = suite.sample()
        if rows is not None:
            num_arms, embeddings = num_arms[rows], embeddings[rows]
        embeddings = embeddings[:, : num_arms.max()]  # a small suite may not reach max_arms
        return ContextualBanditVectorEnv(
            len(num_arms), embeddings=embeddings, num_arms=num_arms, dim=suite.dim, horizon=suite.horizon
        )

    def make_learner(
        self, name: str, env: ContextualBanditVectorEnv, suite: ContextualBanditSuite, rng: np.random.Generator
    ) -> Learner:
        if name == "linucb":
            return LinUCB(env.action_mask, rng, dim=env.dim)
        if name == "random":
            return RandomLearner(env.action_mask, rng)
        raise ValueError(f"unknown contextual bandit learner {name!r}; known: linucb, random")

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
