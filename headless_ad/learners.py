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

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        *,
        next_observations: np.ndarray,
        terminations: np.ndarray,
        truncations: np.ndarray,
    ) -> None:
        """Learn from the transition just taken (bandit learners need only the first three)."""
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

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, **_: np.ndarray) -> None:
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

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, **_: np.ndarray) -> None:
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

    def update(self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, **_: np.ndarray) -> None:
        rows = np.arange(len(actions))
        self.counts[rows, actions] += 1.0
        self.reward_sums[rows, actions] += rewards


class QLearning:
    """Tabular epsilon-greedy Q-learning, one Q table per instance, shape (num_envs, num_states, max_actions).

    Defaults are the Headless-AD Darkroom settings: Q starts U(0, 1), learning rate 0.9933,
    discount 0.6238, and epsilon falls linearly from 1 to 0 over the first `decay_fraction` of
    `num_episodes` episodes, counted per instance from the terminations and truncations it is
    given (so an instance whose episodes end early also explores less sooner).

    Unlike the bandit learners it needs the whole transition, so the collector must call
    `update(observations, actions, rewards, next_observations=..., terminations=...,
    truncations=...)`. With a SAME_STEP vector env, `next_observations` is `info["final_obs"]`
    (the cell reached before any reset), not the returned observation. Terminated transitions
    are not bootstrapped; truncated ones are, since the time limit is not part of the task.
    """

    def __init__(
        self,
        action_mask: np.ndarray,
        rng: np.random.Generator,
        num_states: int,
        learning_rate: float = 0.9933,
        discount: float = 0.6238,
        num_episodes: int = 200,
        decay_fraction: float = 0.9,
    ) -> None:
        if num_states < 1:
            raise ValueError(f"num_states must be >= 1, got {num_states}")
        if num_episodes < 1:
            raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
        if not 0.0 < decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in (0, 1], got {decay_fraction}")
        self.action_mask = action_mask
        self.rng = rng
        self.learning_rate = learning_rate
        self.discount = discount
        self.decay_episodes = decay_fraction * num_episodes
        num_envs, max_actions = action_mask.shape
        self.q = rng.uniform(0.0, 1.0, (num_envs, num_states, max_actions))
        self.episodes = np.zeros(num_envs, dtype=np.int64)

    @property
    def epsilon(self) -> np.ndarray:
        """Current exploration rate of each instance."""
        return np.clip(1.0 - self.episodes / self.decay_episodes, 0.0, 1.0)

    def act(self, observations: np.ndarray) -> np.ndarray:
        rows = np.arange(len(observations))
        greedy = masked_argmax(self.q[rows, observations], self.action_mask, self.rng)
        uniform = masked_argmax(np.zeros(self.action_mask.shape), self.action_mask, self.rng)
        return np.where(self.rng.random(len(observations)) < self.epsilon, uniform, greedy)

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray | None = None,
        terminations: np.ndarray | None = None,
        truncations: np.ndarray | None = None,
    ) -> None:
        # Optional only so the signature still fits `Learner`; learning needs all three.
        if next_observations is None or terminations is None or truncations is None:
            raise ValueError("QLearning.update needs next_observations, terminations and truncations (by keyword)")
        rows = np.arange(len(actions))
        next_values = np.where(self.action_mask, self.q[rows, next_observations], -np.inf).max(axis=1)
        targets = rewards + self.discount * np.where(terminations, 0.0, next_values)
        self.q[rows, observations, actions] += self.learning_rate * (targets - self.q[rows, observations, actions])
        self.episodes += np.logical_or(terminations, truncations)
