"""A trained checkpoint as an agent for any gymnasium env: it learns in-context, never by gradients.

    agent = load_agent("runs/bandit/checkpoint.pt")
    agent.reset(env.action_space.n)          # a new task: the actions each instance offers
    action = agent.act(observation)
    observation, reward, terminated, truncated, _ = env.step(action)
    agent.observe(reward, terminated, truncated)

One agent serves one env or a batch of N instances (a vector env): `reset` takes the actions of
one instance (a count, a `Discrete` space, a list of action ids, a bool mask) or of N (a list of
lists, an (N, A) mask); `act` then returns one action id, or N of them, and `observe` takes one
reward, or N. Episodes of the same task continue one context (that is how it learns): call
`reset` only for a new task or action set, not at episode ends; pass `terminated`/`truncated`
so the model sees where episodes end. With a vector env use `autoreset_mode=SAME_STEP`
(Gymnasium's NEXT_STEP default spends a step on each reset, which the model would read as a
transition).

This is a thin layer over `evaluate.ModelAgent`, which the evaluator uses: the action-set
prompt, random action embeddings per `reset`, the KV cache and the sliding window live there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from headless_ad.action_embeddings import ActionScoring
from headless_ad.checkpoints import load_checkpoint, model_from_checkpoint
from headless_ad.hardware import resolve_device
from headless_ad.model import HeadlessTransformer
from headless_ad.policy import ModelAgent, Selection, TemperatureSchedule
from headless_ad.train_config import nested_config

ActionSets = int | gym.spaces.Discrete | Sequence[int] | Sequence[Sequence[int]] | np.ndarray


class InContextAgent:
    """Acts with a trained model in a batch of env instances (or one); see the module docstring."""

    def __init__(
        self,
        model: HeadlessTransformer,
        scoring: ActionScoring,
        selection: Selection = "sample",
        sample_temperature: float | TemperatureSchedule = 1.0,
        seed: int = 0,
    ) -> None:
        if selection not in ("sample", "argmax"):
            raise ValueError(f"selection must be sample or argmax, got {selection!r}")
        self.model = model.eval()
        self.scoring, self.selection, self.sample_temperature = scoring, selection, sample_temperature
        self.observation_kind = model.config.observation_kind
        self.observation_size = model.config.observation_size
        self.rng = np.random.default_rng(seed)
        self._agent: ModelAgent | None = None

    def reset(self, actions: ActionSets, seed: int | None = None) -> None:
        """Start a new task: forget the context; `actions` are what each instance offers (see the
        module docstring). `seed` fixes the random action embeddings and sampling (default: drawn
        from the agent's seed)."""
        self.single, self.action_ids, mask = action_table(actions)
        seed = int(self.rng.integers(2**31)) if seed is None else seed
        self._agent = ModelAgent(
            self.model, mask, self.selection, self.scoring, seed, sample_temperature=self.sample_temperature
        )
        self._chosen: np.ndarray | None = None

    @property
    def num_envs(self) -> int:
        return len(self._started().action_mask)

    def act(self, observations: Any = None) -> Any:
        """An action id per instance (one int for a single env) for the current observations."""
        agent = self._started()
        if self._chosen is not None:
            raise RuntimeError("act() was called twice: call observe() with the step's reward in between")
        self._chosen = agent.act(self._batched_observations(observations))
        actions = self.action_ids[np.arange(len(self._chosen)), self._chosen]
        return int(actions[0]) if self.single else actions

    def observe(self, rewards: Any, terminated: Any = False, truncated: Any = False) -> None:
        """What the last actions earned, and whether each instance's episode ended with them."""
        agent = self._started()
        if self._chosen is None:
            raise RuntimeError("observe() before act(): the agent has no action to credit the reward to")
        shape = self._chosen.shape
        rewards = np.array(np.broadcast_to(np.asarray(rewards, dtype=np.float32), shape))
        terminated = np.array(np.broadcast_to(np.asarray(terminated, dtype=bool), shape))
        truncated = np.array(np.broadcast_to(np.asarray(truncated, dtype=bool), shape))
        agent.update(None, self._chosen, rewards, terminations=terminated, truncations=truncated)
        self._chosen = None
        self._forget_beyond_window(agent)

    @staticmethod
    def _forget_beyond_window(agent: ModelAgent) -> None:
        """Drop the steps the sliding window can no longer reach, so an agent acting without end
        holds bounded memory (the evaluator's rollouts are short enough to keep everything)."""
        keep = agent.window + 1
        for history in (agent.observations, agent.prev_observations, agent.prev_actions, agent.prev_rewards,
                        agent.prev_dones):  # fmt: skip
            if len(history) > 2 * keep:  # amortised: trim in blocks, not every step
                del history[:-keep]

    def _started(self) -> ModelAgent:
        if self._agent is None:
            raise RuntimeError("call reset(actions) first: the agent must know which actions are on offer")
        return self._agent

    def _batched_observations(self, observations: Any) -> np.ndarray:
        """The observations as the model takes them: (N,) integers or (N, d) floats."""
        num = len(self.action_ids)
        if self.observation_kind == "none":
            return np.zeros(num, dtype=np.int64)
        observed = np.asarray(observations)
        if self.observation_kind == "discrete":
            observed = observed.reshape(num) if observed.size == num else observed
            if observed.shape != (num,) or not np.issubdtype(observed.dtype, np.integer):
                raise ValueError(f"expected {num} integer observation(s), got {observed.dtype} {observed.shape}")
            if ((observed < 0) | (observed >= self.observation_size)).any():
                raise ValueError(f"observations must be in [0, {self.observation_size}), got {observed}")
            return observed.astype(np.int64)
        observed = observed.astype(np.float32).reshape(num, -1) if observed.size else observed
        if observed.shape != (num, self.observation_size):
            raise ValueError(
                f"expected {num} observation(s) of size {self.observation_size}, got shape {np.shape(observations)}"
            )
        return observed


def action_table(actions: ActionSets) -> tuple[bool, np.ndarray, np.ndarray]:
    """(one instance?, action ids (N, K), mask (N, K)) from the forms `reset` takes."""
    if isinstance(actions, gym.spaces.Discrete):
        actions = int(actions.n)
    if isinstance(actions, int | np.integer):
        actions = np.ones(int(actions), dtype=bool)
    if isinstance(actions, np.ndarray) and actions.dtype == bool:
        mask = actions
        single = mask.ndim == 1
        mask = mask[None] if single else mask
        if mask.ndim != 2:
            raise ValueError(f"an action mask must be (actions,) or (instances, actions), got shape {mask.shape}")
        ids = np.broadcast_to(np.arange(mask.shape[1]), mask.shape)
    else:
        rows = list(actions)
        single = not rows or np.ndim(rows[0]) == 0
        rows = [rows] if single else rows
        lists = [np.asarray(row, dtype=np.int64).ravel() for row in rows]
        width = max((row.size for row in lists), default=0)
        ids = np.zeros((len(lists), width), dtype=np.int64)
        mask = np.zeros((len(lists), width), dtype=bool)
        for i, row in enumerate(lists):
            if (row < 0).any() or np.unique(row).size != row.size:
                raise ValueError(f"instance {i}'s actions must be distinct ids >= 0, got {row.tolist()}")
            ids[i, : row.size], mask[i, : row.size] = row, True
    if mask.shape[0] < 1 or not mask.any(axis=1).all():
        raise ValueError("every instance must offer at least one action")
    return single, np.ascontiguousarray(ids), np.ascontiguousarray(mask)


def load_agent(
    checkpoint: Path | str,
    selection: Selection = "sample",
    sample_temperature: float | TemperatureSchedule | None = None,
    seed: int = 0,
    device: str = "auto",
) -> InContextAgent:
    """The model of a `train` checkpoint as an `InContextAgent`. `sample_temperature` defaults to
    the checkpoint's (its constant or annealed schedule); `selection="argmax"` acts greedily."""
    loaded = load_checkpoint(Path(checkpoint))
    model = model_from_checkpoint(loaded, resolve_device(device))
    config = nested_config(loaded["config"])
    if sample_temperature is None:
        sample_temperature = TemperatureSchedule.from_options(config["evaluation"])
    return InContextAgent(model, ActionScoring(**config["scoring"]), selection, sample_temperature, seed)
