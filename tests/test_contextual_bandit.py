"""Linear contextual bandits: env, LinUCB against a plain reference, suites, and a CLI round trip."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the ids)
from envs.contextual_bandit import ContextualBandit, ContextualBanditVectorEnv
from headless_ad.__main__ import main
from headless_ad.learners import LinUCB, masked_argmax
from headless_ad.rollout import run_learner
from headless_ad.tasks import get_task
from headless_ad.tasks.contextual_bandit import ContextualBanditSuite


def test_registered_env_passes_gymnasium_checker() -> None:
    env = gym.make("ContextualBandit-v0")
    with pytest.warns(UserWarning, match="infinity"):  # contexts are Gaussian: the Box is unbounded
        check_env(env.unwrapped)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2,) and obs.dtype == np.float32
    vec = gym.make_vec("ContextualBandit-v0", num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(vec.unwrapped, ContextualBanditVectorEnv) and vec.num_envs == 4
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (4, 2) and vec.observation_space.contains(obs)


def test_rewards_follow_the_linear_model_with_unit_noise() -> None:
    env = ContextualBanditVectorEnv(4_000, num_arms=np.array([3, 7] * 2_000), dim=3, horizon=50, arms_seed=2)
    contexts, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    residuals = []
    for _ in range(10):
        actions = rng.integers(0, env.num_arms)
        expected = np.einsum("nd,nd->n", env.embeddings[np.arange(env.num_envs), actions], contexts)
        contexts, rewards, *_ = env.step(actions)
        residuals.append(rewards - expected)
    residuals = np.concatenate(residuals)
    assert abs(residuals.mean()) < 0.02 and residuals.std() == pytest.approx(1.0, abs=0.02)
    # Contexts and embeddings are N(0, 1/dim) per coordinate.
    assert contexts.var() == pytest.approx(1 / 3, rel=0.05)
    assert env.embeddings[env.action_mask].var() == pytest.approx(1 / 3, rel=0.1)


def test_regret_is_measured_against_the_best_arm_in_the_current_context() -> None:
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    env = ContextualBandit(embeddings=embeddings, horizon=3)
    context, _ = env.reset(seed=0)
    for step in range(3):
        expected = embeddings @ context.astype(np.float64)
        next_context, _, terminated, truncated, info = env.step(step)
        assert info["optimal_arm"] == int(np.argmax(expected))
        assert info["regret"] == pytest.approx(expected.max() - expected[step])
        assert not terminated and truncated == (step == 2)
        assert not np.array_equal(next_context, context)  # a fresh context for the next decision
        context = next_context

    vec = ContextualBanditVectorEnv(2, embeddings=np.stack([embeddings, embeddings[::-1]]), num_arms=3)
    contexts, _ = vec.reset(seed=1)
    expected = vec.expected_rewards(contexts)
    _, _, _, _, info = vec.step(np.array([0, 0]))
    np.testing.assert_array_equal(info["optimal_arm"], expected.argmax(axis=1))
    np.testing.assert_allclose(info["regret"], expected.max(axis=1) - expected[:, 0])


def test_vector_env_with_one_instance_replays_the_single_env() -> None:
    """Same seed, same draw order: contexts, rewards and regrets agree step by step."""
    single = ContextualBandit(num_arms=5, arms_seed=4, horizon=20)
    native = ContextualBanditVectorEnv(1, embeddings=single.embeddings[None], num_arms=5, horizon=20)
    obs_single, _ = single.reset(seed=3)
    obs_native, _ = native.reset(seed=3)
    for action in np.random.default_rng(0).integers(0, 5, 20):
        np.testing.assert_array_equal(obs_native[0], obs_single)
        obs_single, r_single, _, t_single, i_single = single.step(int(action))
        obs_native, r_native, _, t_native, i_native = native.step(np.array([action]))
        assert r_native[0] == pytest.approx(r_single, abs=1e-5) and t_native[0] == t_single
        assert i_native["regret"][0] == pytest.approx(i_single["regret"])
        assert i_native["optimal_arm"][0] == i_single["optimal_arm"]


def test_vector_env_masks_padded_arms_and_autoresets_on_the_next_step() -> None:
    # Instance 0's padding row would be optimal in every context it points along; it must be ignored.
    embeddings = np.zeros((2, 3, 2))
    embeddings[0, :2] = [[0.1, 0.0], [0.0, 0.1]]
    embeddings[0, 2] = [1e6, 1e6]
    embeddings[1] = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    env = ContextualBanditVectorEnv(2, embeddings=embeddings, num_arms=np.array([2, 3]), horizon=2)
    env.reset(seed=0)
    np.testing.assert_array_equal(env.action_mask, [[True, True, False], [True, True, True]])
    assert (env.embeddings[0, 2] == 0).all()
    _, _, _, _, info = env.step(np.array([0, 2]))
    assert info["optimal_arm"][0] in (0, 1) and np.isfinite(info["regret"]).all()
    with pytest.raises(ValueError, match="instance 0 has 2 arms"):
        env.step(np.array([2, 0]))
    *_, truncated, _ = env.step(np.array([0, 0]))
    assert truncated.all()
    _, rewards, _, truncated, info = env.step(np.array([2, 2]))  # the reset step ignores the action
    assert (rewards == 0).all() and not truncated.any() and (info["regret"] == 0).all()


def test_bad_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="dimension must be >= 1"):
        ContextualBandit(dim=0)
    with pytest.raises(ValueError, match="at least 2 arms"):
        ContextualBandit(num_arms=1)
    with pytest.raises(ValueError, match="at least 2 arms"):
        ContextualBandit(embeddings=[[0.5, 0.5]])
    with pytest.raises(ValueError, match="finite"):
        ContextualBandit(embeddings=[[0.5, np.nan], [0.1, 0.2]])
    with pytest.raises(ValueError, match="dimension must be >= 1"):
        ContextualBanditVectorEnv(2, num_arms=3, dim=0)
    with pytest.raises(ValueError, match="at least 2 arms"):
        ContextualBanditVectorEnv(2, num_arms=np.array([1, 3]))
    with pytest.raises(ValueError, match="finite"):
        ContextualBanditVectorEnv(1, embeddings=np.array([[[np.inf, 0.0], [0.0, 1.0]]]), num_arms=2)
    with pytest.raises(ValueError, match="shape"):
        ContextualBanditVectorEnv(2, embeddings=np.zeros((2, 4, 2)), num_arms=3)
    env = ContextualBandit(num_arms=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="not one of"):
        env.step(3)
    with pytest.raises(ValueError, match="at least 2 arms"):
        ContextualBanditSuite(num_instances=4, min_arms=1)
    with pytest.raises(ValueError, match="embedding_scale"):
        ContextualBanditSuite(num_instances=4, embedding_scale=0.0)
    with pytest.raises(ValueError, match="ridge"):
        LinUCB(np.ones((1, 2), dtype=bool), np.random.default_rng(0), dim=2, ridge=0.0)


class ReferenceLinUCB:
    """LinUCB written plainly: a loop over instances and arms, inverting A with np.linalg.inv."""

    def __init__(self, action_mask: np.ndarray, dim: int, alpha: float = 0.3, ridge: float = 1.0) -> None:
        num_envs, max_arms = action_mask.shape
        self.action_mask, self.alpha = action_mask, alpha
        self.a = [[ridge * np.eye(dim) for _ in range(max_arms)] for _ in range(num_envs)]
        self.b = [[np.zeros(dim) for _ in range(max_arms)] for _ in range(num_envs)]

    def scores(self, contexts: np.ndarray) -> np.ndarray:
        scores = np.zeros(self.action_mask.shape)
        for i, x in enumerate(contexts.astype(np.float64)):
            for arm in range(self.action_mask.shape[1]):
                a_inv = np.linalg.inv(self.a[i][arm])
                theta = a_inv @ self.b[i][arm]
                scores[i, arm] = theta @ x + self.alpha * np.sqrt(x @ a_inv @ x)
        return scores

    def update(self, contexts: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        for i, (x, arm, reward) in enumerate(zip(contexts.astype(np.float64), actions, rewards, strict=True)):
            self.a[i][arm] += np.outer(x, x)
            self.b[i][arm] += float(reward) * x


def test_linucb_matches_a_plain_per_instance_reference() -> None:
    num_arms = np.array([3, 5, 4])
    env = ContextualBanditVectorEnv(3, num_arms=num_arms, dim=3, horizon=100, arms_seed=1)
    learner = LinUCB(env.action_mask, np.random.default_rng(7), dim=3)
    reference = ReferenceLinUCB(env.action_mask, dim=3)
    reference_rng = np.random.default_rng(7)  # the same tie-breaking draws (untouched arms tie exactly)
    contexts, _ = env.reset(seed=0)
    for _ in range(50):
        np.testing.assert_allclose(learner.scores(contexts), reference.scores(contexts), rtol=1e-9, atol=1e-12)
        actions = learner.act(contexts)
        expected = masked_argmax(reference.scores(contexts), env.action_mask, reference_rng)
        np.testing.assert_array_equal(actions, expected)
        next_contexts, rewards, *_ = env.step(actions)
        learner.update(contexts, actions, rewards)
        reference.update(contexts, actions, rewards)
        contexts = next_contexts
    assert np.take_along_axis(env.action_mask, actions[:, None], axis=1).all()


def final_regret(learner: str, suite: ContextualBanditSuite, seed: int = 0) -> float:
    task = get_task("contextual_bandit")
    env = task.make_env(suite)
    rollout = run_learner(env, task.make_learner(learner, env, suite, np.random.default_rng(seed)), suite.horizon, seed)
    taken_available = np.take_along_axis(env.action_mask, rollout.actions, axis=1)
    assert taken_available.all(), learner
    return task.metric(rollout)


def test_linucb_beats_random_by_a_wide_margin() -> None:
    suite = ContextualBanditSuite(num_instances=200, horizon=300, seed=5)
    random = final_regret("random", suite)
    assert final_regret("linucb", suite) < 0.5 * random
    scaled = ContextualBanditSuite(num_instances=200, embedding_scale=2.0, horizon=300, seed=6)
    assert final_regret("linucb", scaled) < 0.5 * final_regret("random", scaled)


def test_suites_are_prefix_stable_and_named_suites_follow_their_definitions() -> None:
    big = ContextualBanditSuite(num_instances=3_000, seed=0)
    small = ContextualBanditSuite(num_instances=40, seed=0)
    arms_big, embeddings_big = big.sample()
    arms_small, embeddings_small = small.sample()
    np.testing.assert_array_equal(arms_big[:40], arms_small)
    np.testing.assert_array_equal(embeddings_big[:40], embeddings_small)
    assert arms_big.min() == 4 and arms_big.max() == 20 and embeddings_big.shape == (3_000, 20, 2)
    assert embeddings_big.var() == pytest.approx(0.5, rel=0.05)
    env = get_task("contextual_bandit").make_env(big, rows=slice(10, 20))
    np.testing.assert_array_equal(env.num_arms, arms_big[10:20])

    task = get_task("contextual_bandit")
    assert task.parse_suite("train", 10, 300, train_seed=4) == ContextualBanditSuite(10, seed=4)
    eval_suite, scaled = task.parse_suite("eval", 10, 300, 0), task.parse_suite("eval_scaled", 10, 300, 0)
    assert eval_suite.seed != 0 and (eval_suite.embedding_scale, scaled.embedding_scale) == (1.0, 2.0)
    for spec in task.default_eval_suites:
        task.parse_suite(spec, 10, 300, 0)
    wide = task.parse_suite("num_100", 10, 300, 0)
    assert (wide.min_arms, wide.max_arms) == (100, 100)
    custom = task.parse_suite("arms=3-7,scale=1.5,instances=12,seed=9", 100, 300, 0)
    assert (custom.min_arms, custom.max_arms, custom.embedding_scale, custom.num_instances, custom.seed) == (
        3, 7, 1.5, 12, 9,
    )  # fmt: skip
    with pytest.raises(ValueError, match="unknown contextual bandit suite"):
        task.parse_suite("all_new", 10, 300, 0)
    with pytest.raises(ValueError, match="unknown key 'means'"):
        task.parse_suite("means=uniform", 10, 300, 0)
    env = task.make_env(small)
    with pytest.raises(ValueError, match="unknown contextual bandit learner"):
        task.make_learner("thompson", env, small, np.random.default_rng(0))


def test_cli_round_trip(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    tiny = [
        "--collect.num-instances", "32", "--collect.horizon", "40", "--seq-len", "40",
        "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2", "--batch-size", "4",
        "--total-steps", "4", "--warmup-steps", "1", "--eval-every", "0", "--eval-instances", "8",
        "--eval-suites", "eval", "--threads", "1",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["headless_ad", "train", "contextual-bandit", "--run-name", "ctx", *tiny])
    main()
    assert "| eval |" in capsys.readouterr().out
    store = tmp_path / "runs/histories/contextual_bandit-linucb-n32-t40-s0"
    observations = np.load(store / "observations.npy")
    assert observations.shape == (32, 40, 2) and observations.dtype == np.float32
    checkpoint = tmp_path / "runs/ctx/checkpoint.pt"
    monkeypatch.setattr(
        sys, "argv", ["headless_ad", "evaluate", "--checkpoint", str(checkpoint), "--num-instances", "8",
                      "--suites", "num_30", "arms=3-5,scale=2,instances=5,seed=3"],
    )  # fmt: skip
    main()
    out = capsys.readouterr().out
    assert "| num_30 |" in out and "| arms=3-5,scale=2,instances=5,seed=3 |" in out
    assert (tmp_path / "runs/ctx/evaluation.md").is_file()
