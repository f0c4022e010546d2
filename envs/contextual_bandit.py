"""Linear contextual bandits whose number of arms varies per instance.

Each arm `a` has a fixed embedding `e_a` in R^d; every step a fresh context `x` is drawn and
pulling arm `a` pays `N(<e_a, x>, 1)`. Embeddings and contexts default to N(0, 1/d) per
coordinate, so an expected reward has variance 1/d.

`ContextualBandit` is a plain `gymnasium.Env`; `ContextualBanditVectorEnv` steps many instances
with different arm counts at once (embeddings padded to the largest count, plus an availability
mask). The observation returned by `reset` and `step` is the context of the *next* decision.

An episode is `horizon` pulls of the same bandit: the embeddings are fixed at construction and
never redrawn by `reset`; only the contexts change from step to step.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from envs.bandit import arm_counts, check_pulls


def random_embeddings(shape: tuple[int, ...], dim: int, seed: int) -> np.ndarray:
    """Arm embeddings of shape (*shape, dim), N(0, 1/dim) per coordinate."""
    return np.random.default_rng(seed).normal(0.0, 1.0 / np.sqrt(dim), (*shape, dim))


def _check_common(dim: int, horizon: int) -> None:
    if dim < 1:
        raise ValueError(f"the context dimension must be >= 1, got dim={dim}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")


def _check_embeddings(embeddings: np.ndarray) -> None:
    if not np.all(np.isfinite(embeddings)):
        raise ValueError("arm embeddings must be finite")


def _context_space(dim: int) -> spaces.Box:
    return spaces.Box(-np.inf, np.inf, shape=(dim,), dtype=np.float32)


class ContextualBandit(gym.Env[np.ndarray, np.int64]):
    """A bandit whose arm `a` pays `N(<embeddings[a], x>, 1)` in context `x`.

    The observation is the context (float32, shape (dim,)) in which the next arm is pulled.
    `info` after a step carries the `regret` of the pull in the context it was taken in
    (best expected reward minus that of the pulled arm) and that context's `optimal_arm`.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        embeddings: np.ndarray | list[list[float]] | None = None,
        num_arms: int = 10,
        dim: int = 2,
        horizon: int = 300,
        arms_seed: int = 0,
    ) -> None:
        if embeddings is None:
            _check_common(dim, horizon)
            if num_arms < 2:
                raise ValueError(f"a bandit needs at least 2 arms, got num_arms={num_arms}")
            embeddings = random_embeddings((num_arms,), dim, arms_seed)
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must have shape (arms, dim), got shape {embeddings.shape}")
        if embeddings.shape[0] < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got {embeddings.shape[0]} embeddings")
        _check_common(embeddings.shape[1], horizon)
        _check_embeddings(embeddings)
        self.embeddings = embeddings
        self.dim = embeddings.shape[1]
        self.horizon = horizon
        self.observation_space = _context_space(self.dim)
        self.action_space = spaces.Discrete(embeddings.shape[0])
        self._context = np.zeros(self.dim, dtype=np.float32)
        self._steps = 0

    def _draw_context(self) -> np.ndarray:
        self._context = self.np_random.normal(0.0, 1.0 / np.sqrt(self.dim), self.dim).astype(np.float32)
        return self._context.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._steps = 0
        return self._draw_context(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"arm {action!r} is not one of the {self.embeddings.shape[0]} arms")
        expected = self.embeddings @ self._context.astype(np.float64)
        optimal_arm = int(np.argmax(expected))
        reward = float(expected[action] + self.np_random.normal())
        self._steps += 1
        info = {"regret": float(expected[optimal_arm] - expected[action]), "optimal_arm": optimal_arm}
        return self._draw_context(), reward, False, self._steps >= self.horizon, info


class ContextualBanditVectorEnv(gym.vector.VectorEnv):
    """`num_envs` linear contextual bandits stepped together with numpy.

    `embeddings` has shape (num_envs, max_arms, dim); instance i offers arms 0..num_arms[i]-1
    and the rows beyond are padding. `action_mask` (num_envs, max_arms) says which arms exist;
    pulling one that does not raises. Every step draws a new context for every instance from
    the env's `np_random`, also for instances that are resetting, so the context stream depends
    only on the seed. Autoreset follows Gymnasium 1.x NEXT_STEP: the step after a truncation
    only resets that instance (reward 0, regret 0, action ignored).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        embeddings: np.ndarray | None = None,
        num_arms: np.ndarray | int = 10,
        dim: int = 2,
        horizon: int = 300,
        arms_seed: int = 0,
    ) -> None:
        num_arms = arm_counts(num_arms, num_envs)
        max_arms = int(num_arms.max())
        if embeddings is None:
            _check_common(dim, horizon)
            embeddings = random_embeddings((num_envs, max_arms), dim, arms_seed)
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 3 or embeddings.shape[:2] != (num_envs, max_arms):
            raise ValueError(f"embeddings must have shape {(num_envs, max_arms, 'dim')}, got {embeddings.shape}")
        dim = embeddings.shape[2]
        _check_common(dim, horizon)
        self.num_envs = num_envs
        self.dim = dim
        self.horizon = horizon
        self.num_arms = num_arms
        self.action_mask = np.arange(max_arms)[None, :] < num_arms[:, None]
        _check_embeddings(embeddings[self.action_mask])
        # Padding rows are zeroed (whatever was passed) and masked to -inf when scoring arms.
        self.embeddings = np.where(self.action_mask[:, :, None], embeddings, 0.0)

        self.single_observation_space = _context_space(dim)
        self.single_action_space = spaces.Discrete(max_arms)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._contexts = np.zeros((num_envs, dim), dtype=np.float32)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    def expected_rewards(self, contexts: np.ndarray) -> np.ndarray:
        """(num_envs, max_arms) expected reward of every arm in `contexts` (num_envs, dim); -inf on padding."""
        means = np.einsum("nad,nd->na", self.embeddings, contexts.astype(np.float64))
        return np.where(self.action_mask, means, -np.inf)

    def _draw_contexts(self) -> np.ndarray:
        scale = 1.0 / np.sqrt(self.dim)
        self._contexts = self.np_random.normal(0.0, scale, (self.num_envs, self.dim)).astype(np.float32)
        return self._contexts.copy()

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            raise ValueError("a vectorised bandit takes one integer seed for all instances")
        super().reset(seed=seed)
        self._steps[:] = 0
        self._needs_reset[:] = False
        return self._draw_contexts(), {"action_mask": self.action_mask}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        rows = np.arange(self.num_envs)
        live = ~self._needs_reset
        actions = check_pulls(actions, self.action_mask, live)
        safe_actions = np.where(live, actions, 0)
        expected = self.expected_rewards(self._contexts)
        optimal_arm = expected.argmax(axis=1)
        pulled_mean = expected[rows, safe_actions]
        # Noise is drawn for every instance whatever it pulls, so learners run with the same
        # seed meet the same contexts and the same noise.
        rewards = (pulled_mean + self.np_random.normal(0.0, 1.0, self.num_envs)).astype(np.float32)
        regret = expected[rows, optimal_arm] - pulled_mean

        rewards[~live] = 0.0
        regret[~live] = 0.0
        self._steps = np.where(live, self._steps + 1, 0)
        truncated = live & (self._steps >= self.horizon)
        self._needs_reset = truncated.copy()
        observations = self._draw_contexts()
        terminated = np.zeros(self.num_envs, dtype=bool)
        info = {"regret": regret, "optimal_arm": optimal_arm}
        return observations, rewards, terminated, truncated, info
