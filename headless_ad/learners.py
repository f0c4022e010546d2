"""Source algorithms, vectorised over environment instances.

Every learner holds the statistics of all instances in (num_envs, max_actions) arrays and acts
for all of them with a handful of numpy operations. `action_mask` says which actions each
instance offers; a learner never picks one outside it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Learner(Protocol):
    """What the collector and the evaluator need from anything that acts and learns."""

    def act(self, observations: np.ndarray) -> np.ndarray:
        """One action per instance, given the current observations."""
        ...

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Learn from the transition just taken."""
        ...


def masked_argmax(scores: np.ndarray, action_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Argmax over available actions per row; ties broken uniformly at random."""
    scores = np.where(action_mask, scores, -np.inf)
    best = scores == scores.max(axis=1, keepdims=True)
    # A random key among the best entries picks one uniformly without a Python loop.
    keys = np.where(best, rng.random(scores.shape), -1.0)
    return keys.argmax(axis=1)


class RandomLearner:
    """Uniform over each instance's available actions."""

    def __init__(self, action_mask: np.ndarray, rng: np.random.Generator) -> None:
        self.action_mask = action_mask
        self.rng = rng

    def act(self, observations: np.ndarray) -> np.ndarray:
        return masked_argmax(np.zeros(self.action_mask.shape), self.action_mask, self.rng)

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        pass


class ThompsonSampling:
    """Thompson Sampling for Bernoulli rewards with a Beta(prior_alpha, prior_beta) prior per arm."""

    def __init__(
        self,
        action_mask: np.ndarray,
        rng: np.random.Generator,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
    ) -> None:
        self.action_mask = action_mask
        self.rng = rng
        self.alpha = np.full(action_mask.shape, prior_alpha)
        self.beta = np.full(action_mask.shape, prior_beta)

    def act(self, observations: np.ndarray) -> np.ndarray:
        return masked_argmax(self.rng.beta(self.alpha, self.beta), self.action_mask, self.rng)

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(len(actions))
        self.alpha[rows, actions] += rewards
        self.beta[rows, actions] += 1.0 - rewards


class UCB:
    """UCB1: pull every arm once, then the arm maximising mean + c * sqrt(2 ln t / n)."""

    def __init__(self, action_mask: np.ndarray, rng: np.random.Generator, exploration: float = 1.0) -> None:
        self.action_mask = action_mask
        self.rng = rng
        self.exploration = exploration
        self.counts = np.zeros(action_mask.shape)
        self.reward_sums = np.zeros(action_mask.shape)

    def act(self, observations: np.ndarray) -> np.ndarray:
        total = self.counts.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = self.reward_sums / self.counts
            bonus = self.exploration * np.sqrt(2.0 * np.log(np.maximum(total, 1.0)) / self.counts)
        scores = np.where(self.counts > 0, means + bonus, np.inf)
        return masked_argmax(scores, self.action_mask, self.rng)

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        rows = np.arange(len(actions))
        self.counts[rows, actions] += 1.0
        self.reward_sums[rows, actions] += rewards
