"""How well can any imitator of LinUCB do? LinUCB breaks exact ties between arms at random (at
the first step every arm ties; later, the arms not pulled yet tie with each other), and there the
best possible teacher-forced accuracy is 1 / (number of tied arms). This prints that ceiling per
arm count and range of steps, for comparison with `benchmarks/imitation_accuracy.py`:

    python benchmarks/linucb_ties.py --arms 4 10 20 30 50
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import tyro

from headless_ad.learners import LinUCB
from headless_ad.tasks.contextual_bandit import ContextualBanditSuite, ContextualBanditTask


@dataclass
class Config:
    arms: tuple[int, ...] = (4, 10, 20, 30, 50)
    """Arm counts, one suite each."""
    instances: int = 1_000
    """Bandits per arm count."""
    step_edges: tuple[int, ...] = (50, 150)
    """Boundaries of the step ranges reported besides the whole history."""
    seed: int = 77


def tie_ceiling(num_arms: int, instances: int, seed: int) -> np.ndarray:
    """(instances, horizon) 1 / the number of arms tied for LinUCB's best score at each step."""
    task = ContextualBanditTask()
    suite = ContextualBanditSuite(num_instances=instances, min_arms=num_arms, max_arms=num_arms, seed=seed)
    env = task.make_env(suite)
    learner = LinUCB(env.action_mask, np.random.default_rng(seed), dim=env.dim)
    contexts, _ = env.reset(seed=seed)
    ceiling = np.empty((instances, suite.horizon))
    for step in range(suite.horizon):
        scores = np.where(env.action_mask, learner.scores(contexts), -np.inf)
        ceiling[:, step] = 1.0 / (scores >= scores.max(axis=1, keepdims=True) - 1e-9).sum(axis=1)
        actions = learner.act(contexts)
        next_contexts, rewards, *_ = env.step(actions)
        learner.update(contexts, actions, rewards)
        contexts = next_contexts
    return ceiling


def main(config: Config) -> None:
    for num_arms in config.arms:
        ceiling = tie_ceiling(num_arms, config.instances, config.seed)
        edges = [0, *config.step_edges, ceiling.shape[1]]
        ranges = "  ".join(
            f"steps {lo}-{hi - 1} {ceiling[:, lo:hi].mean():.3f}" for lo, hi in itertools.pairwise(edges)
        )
        print(f"{num_arms} arms: {ceiling.mean():.3f}  |  {ranges}")


if __name__ == "__main__":
    main(tyro.cli(Config))
