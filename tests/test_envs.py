"""Bernoulli bandit environments: spaces, regret bookkeeping, masks, autoreset, registration."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.bandit import BernoulliBandit, BernoulliBanditVectorEnv


def test_registered_env_passes_gymnasium_checker() -> None:
    env = gym.make("BernoulliBandit-v0")
    check_env(env.unwrapped)
    vec = gym.make_vec("BernoulliBandit-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(vec.unwrapped, BernoulliBanditVectorEnv) and vec.num_envs == 4


def test_single_env_reports_regret_and_optimal_arm() -> None:
    env = BernoulliBandit(means=[0.2, 0.9, 0.5], horizon=3)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(0)
    assert info["optimal_arm"] == 1 and info["regret"] == pytest.approx(0.7)
    assert not terminated and not truncated
    _, _, _, _, info = env.step(1)
    assert info["regret"] == 0.0
    *_, truncated, _ = env.step(2)
    assert truncated


def test_single_env_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 arms"):
        BernoulliBandit(num_arms=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BernoulliBandit(means=[0.5, 1.5])
    env = BernoulliBandit(means=[0.5, 0.5])
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not one of"):
        env.step(2)


def test_vector_env_matches_single_envs_on_deterministic_arms() -> None:
    """Arms with means 0 and 1 pay deterministically, so the native vector env and a
    SyncVectorEnv of single envs must agree exactly on rewards, regrets and optimal arms.
    (SyncVectorEnv needs equal action spaces, hence equal arm counts here.)"""
    means = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    num_arms = np.array([4, 4, 4])
    native = BernoulliBanditVectorEnv(3, means=means, num_arms=num_arms, horizon=5)
    sync = gym.vector.SyncVectorEnv(
        [lambda m=m, k=k: BernoulliBandit(means=m[:k], horizon=5) for m, k in zip(means, num_arms, strict=True)]
    )
    native.reset(seed=1)
    sync.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(5):
        actions = rng.integers(0, num_arms)
        _, r_native, _, t_native, i_native = native.step(actions)
        _, r_sync, _, t_sync, i_sync = sync.step(actions)
        np.testing.assert_array_equal(r_native, r_sync)
        np.testing.assert_array_equal(t_native, t_sync)
        np.testing.assert_allclose(i_native["regret"], i_sync["regret"])
        np.testing.assert_array_equal(i_native["optimal_arm"], i_sync["optimal_arm"])


def test_vector_env_masks_padded_arms() -> None:
    env = BernoulliBanditVectorEnv(2, means=np.array([[0.1, 0.2, 0.99], [0.3, 0.4, 0.5]]), num_arms=np.array([2, 3]))
    env.reset(seed=0)
    np.testing.assert_array_equal(env.action_mask, [[True, True, False], [True, True, True]])
    # The padded arm's 0.99 is not an arm of instance 0: its optimal arm is 1.
    np.testing.assert_array_equal(env.optimal_arm, [1, 2])
    with pytest.raises(ValueError, match="instance 0 has 2 arms"):
        env.step(np.array([2, 0]))


def test_vector_env_reward_frequencies_follow_means() -> None:
    means = np.array([[0.1, 0.8]] * 2000)
    env = BernoulliBanditVectorEnv(2000, means=means, num_arms=2, horizon=10)
    env.reset(seed=0)
    _, rewards, *_ = env.step(np.ones(2000, dtype=np.int64))
    assert rewards.mean() == pytest.approx(0.8, abs=0.03)


def test_vector_env_autoresets_on_the_next_step() -> None:
    env = BernoulliBanditVectorEnv(2, means=np.full((2, 2), 1.0), num_arms=2, horizon=2)
    env.reset(seed=0)
    env.step(np.zeros(2, dtype=np.int64))
    *_, truncated, _ = env.step(np.zeros(2, dtype=np.int64))
    assert truncated.all()
    _, rewards, _, truncated, info = env.step(np.zeros(2, dtype=np.int64))  # the reset step
    assert (rewards == 0).all() and not truncated.any() and (info["regret"] == 0).all()
    _, rewards, *_ = env.step(np.zeros(2, dtype=np.int64))
    assert (rewards == 1).all()


def test_vector_env_is_reproducible_from_its_seed() -> None:
    def rewards(seed: int) -> np.ndarray:
        env = BernoulliBanditVectorEnv(50, num_arms=5, arms_seed=3)
        env.reset(seed=seed)
        return np.stack([env.step(np.full(50, 2))[1] for _ in range(20)])

    np.testing.assert_array_equal(rewards(7), rewards(7))
    assert not np.array_equal(rewards(7), rewards(8))
