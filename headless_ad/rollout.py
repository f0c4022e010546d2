"""Run any learner (a source algorithm or the model) over a vectorised environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from headless_ad.learners import Learner


@dataclass
class Rollout:
    actions: np.ndarray  # (N, T)
    rewards: np.ndarray  # (N, T)
    observations: np.ndarray  # (N, T[, d]) observation on which each action was taken
    dones: np.ndarray  # (N, T) the step ended an episode (terminated or truncated)
    regrets: np.ndarray | None  # (N, T) when the env reports it
    policy_actions: np.ndarray | None = None  # (N, T) the learner's distribution, when it tells it
    policy_spread: np.ndarray | None = None  # (N, T) (learners.Learner: last_policy)
    policy_probabilities: np.ndarray | None = None  # (N, T, A) (learners.Learner: last_probabilities)


def concatenate(parts: list[Rollout]) -> Rollout:
    """Join rollouts of disjoint instance ranges (same number of steps) along the instance axis."""

    def joined(name: str) -> np.ndarray | None:
        return None if getattr(parts[0], name) is None else np.concatenate([getattr(part, name) for part in parts])

    return Rollout(
        actions=np.concatenate([part.actions for part in parts]),
        rewards=np.concatenate([part.rewards for part in parts]),
        observations=np.concatenate([part.observations for part in parts]),
        dones=np.concatenate([part.dones for part in parts]),
        regrets=joined("regrets"),
        policy_actions=joined("policy_actions"),
        policy_spread=joined("policy_spread"),
        policy_probabilities=joined("policy_probabilities"),
    )


def run_learner(
    env: gym.vector.VectorEnv,
    learner: Learner,
    num_steps: int,
    seed: int,
    on_step: Callable[[], None] | None = None,
) -> Rollout:
    """Act and learn for `num_steps` steps in every instance; the env is seeded with `seed`, so two
    learners run with the same seed meet the same instances and the same reward noise stream.

    `on_step` is called after every step of all instances (progress reporting).

    Histories run straight through episode ends: vector envs reset finished instances themselves
    (a NEXT_STEP env spends one step on it; the bandit's single long episode never ends early).
    """
    observations, _ = env.reset(seed=seed)
    actions, rewards, seen, dones, regrets, modes, spreads, probabilities = [], [], [], [], [], [], [], []
    for _ in range(num_steps):
        action = learner.act(observations)
        policy = getattr(learner, "last_policy", None)
        if policy is not None:
            modes.append(policy[0].astype(np.int16))
            spreads.append(policy[1].astype(np.float16))
        if (action_probabilities := getattr(learner, "last_probabilities", None)) is not None:
            probabilities.append(action_probabilities.astype(np.float16))
        next_observations, reward, terminated, truncated, info = env.step(action)
        # With same-step autoreset the returned observation of a finished episode is already the
        # next episode's first; the learner must bootstrap from the one the episode ended in.
        final_observations = info.get("final_obs", next_observations)
        learner.update(
            observations, action, reward,
            next_observations=final_observations, terminations=terminated, truncations=truncated,
        )  # fmt: skip
        actions.append(action)
        rewards.append(reward)
        seen.append(observations)
        dones.append(terminated | truncated)
        if "regret" in info:
            regrets.append(info["regret"])
        observations = next_observations
        if on_step is not None:
            on_step()
    return Rollout(
        actions=np.stack(actions, axis=1),
        rewards=np.stack(rewards, axis=1).astype(np.float32),
        observations=np.stack(seen, axis=1),
        dones=np.stack(dones, axis=1),
        regrets=np.stack(regrets, axis=1).astype(np.float32) if regrets else None,
        policy_actions=np.stack(modes, axis=1) if modes else None,
        policy_spread=np.stack(spreads, axis=1) if spreads else None,
        policy_probabilities=np.stack(probabilities, axis=1) if probabilities else None,
    )
