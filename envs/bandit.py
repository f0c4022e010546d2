"""Bernoulli multi-armed bandits whose number of arms varies per instance.

`BernoulliBandit` is a plain `gymnasium.Env`; `BernoulliBanditVectorEnv` steps many instances
with different arm counts at once (arm means padded to the largest count, plus an availability
mask), which is what collection and evaluation use.

An episode is `horizon` pulls of the same bandit: the arm means are fixed at construction and
never redrawn by `reset`, so a learner can improve across the whole episode.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space


def _check_means(means: np.ndarray) -> None:
    if not np.all(np.isfinite(means)) or np.any(means < 0) or np.any(means > 1):
        raise ValueError("arm means must be finite probabilities in [0, 1]")


def arm_counts(num_arms: np.ndarray | int, num_envs: int) -> np.ndarray:
    """Per-instance arm counts (one int broadcasts to all), each at least 2."""
    counts = np.broadcast_to(np.asarray(num_arms, dtype=np.int64), (num_envs,)).copy()
    if np.any(counts < 2):
        raise ValueError(f"a bandit needs at least 2 arms, got num_arms min {counts.min()}")
    return counts


def check_pulls(actions: np.ndarray, action_mask: np.ndarray, live: np.ndarray) -> np.ndarray:
    """The actions as int64, after checking that every live instance pulled one of its own arms."""
    actions = np.asarray(actions, dtype=np.int64)
    num_envs, max_arms = action_mask.shape
    if actions.shape != (num_envs,):
        raise ValueError(f"expected {num_envs} actions, got shape {actions.shape}")
    valid = (actions >= 0) & (actions < max_arms)
    valid &= action_mask[np.arange(num_envs), np.clip(actions, 0, max_arms - 1)]
    if np.any(live & ~valid):
        bad = int(np.flatnonzero(live & ~valid)[0])
        raise ValueError(f"instance {bad} has {action_mask[bad].sum()} arms; arm {actions[bad]} does not exist")
    return actions


class BernoulliBandit(gym.Env[np.int64, np.int64]):
    """A bandit whose arm `a` pays 1 with probability `means[a]`, else 0.

    The observation is the constant 0 (a bandit has no state). `info` after a step carries the
    `regret` of the pull (best mean minus the mean of the pulled arm) and the `optimal_arm`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        means: np.ndarray | list[float] | None = None,
        num_arms: int = 10,
        horizon: int = 300,
        arms_seed: int = 0,
    ) -> None:
        if means is None:
            if num_arms < 2:
                raise ValueError(f"a bandit needs at least 2 arms, got num_arms={num_arms}")
            means = np.random.default_rng(arms_seed).uniform(0.0, 1.0, num_arms)
        means = np.asarray(means, dtype=np.float64)
        if means.ndim != 1 or means.size < 2:
            raise ValueError(f"means must be a 1-D array of at least 2 arms, got shape {means.shape}")
        _check_means(means)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.means = means
        self.horizon = horizon
        self.optimal_arm = int(np.argmax(means))
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(means.size)
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        super().reset(seed=seed)
        self._steps = 0
        return np.int64(0), {}

    def step(self, action: int) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"arm {action!r} is not one of the {self.means.size} arms")
        reward = float(self.np_random.random() < self.means[action])
        self._steps += 1
        info = {
            "regret": float(self.means[self.optimal_arm] - self.means[action]),
            "optimal_arm": self.optimal_arm,
        }
        return np.int64(0), reward, False, self._steps >= self.horizon, info


class BernoulliBanditVectorEnv(gym.vector.VectorEnv):
    """`num_envs` Bernoulli bandits stepped together with numpy.

    `means` has shape (num_envs, max_arms); instance i offers arms 0..num_arms[i]-1 and the
    entries beyond are padding. `action_mask` (num_envs, max_arms) says which arms exist;
    pulling one that does not raises. Autoreset follows Gymnasium 1.x NEXT_STEP: the step after
    a truncation only resets that instance (reward 0, action ignored).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        means: np.ndarray | None = None,
        num_arms: np.ndarray | int = 10,
        horizon: int = 300,
        arms_seed: int = 0,
    ) -> None:
        num_arms = arm_counts(num_arms, num_envs)
        max_arms = int(num_arms.max())
        if means is None:
            means = np.random.default_rng(arms_seed).uniform(0.0, 1.0, (num_envs, max_arms))
        means = np.asarray(means, dtype=np.float64)
        if means.shape != (num_envs, max_arms):
            raise ValueError(f"means must have shape {(num_envs, max_arms)}, got {means.shape}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.num_envs = num_envs
        self.horizon = horizon
        self.num_arms = num_arms
        self.action_mask = np.arange(max_arms)[None, :] < num_arms[:, None]
        # Padding arms get mean -inf so they are never optimal; the real ones are validated.
        self.means = np.where(self.action_mask, means, -np.inf)
        _check_means(self.means[self.action_mask])
        self.optimal_arm = np.argmax(self.means, axis=1)
        self.optimal_mean = self.means[np.arange(num_envs), self.optimal_arm]

        self.single_observation_space = spaces.Discrete(1)
        self.single_action_space = spaces.Discrete(max_arms)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            raise ValueError("a vectorised bandit takes one integer seed for all instances")
        super().reset(seed=seed)
        self._steps[:] = 0
        self._needs_reset[:] = False
        return np.zeros(self.num_envs, dtype=np.int64), {"action_mask": self.action_mask}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        rows = np.arange(self.num_envs)
        live = ~self._needs_reset
        actions = check_pulls(actions, self.action_mask, live)
        safe_actions = np.where(live, actions, 0)
        pulled_mean = self.means[rows, safe_actions]
        rewards = (self.np_random.random(self.num_envs) < pulled_mean).astype(np.float32)
        regret = self.optimal_mean - pulled_mean

        rewards[~live] = 0.0
        regret[~live] = 0.0
        self._steps = np.where(live, self._steps + 1, 0)
        truncated = live & (self._steps >= self.horizon)
        self._needs_reset = truncated.copy()
        observations = np.zeros(self.num_envs, dtype=np.int64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        info = {"regret": regret, "optimal_arm": self.optimal_arm.copy()}
        return observations, rewards, terminated, truncated, info
