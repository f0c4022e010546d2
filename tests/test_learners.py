"""Vectorised source algorithms and the bandit task's instance sets."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import numpy as np
import pytest

from headless_ad.collect import CollectConfig
from headless_ad.histories import load_store
from headless_ad.learners import ThompsonSampling, masked_argmax
from headless_ad.rollout import run_learner
from headless_ad.tasks import get_task
from headless_ad.tasks.bandit import BanditSuite

# The module: the package exports the function `collect` under the same name.
collect_module = import_module("headless_ad.collect")


def final_regret(learner: str, suite: BanditSuite, seed: int = 0) -> float:
    task = get_task("bandit")
    env = task.make_env(suite)
    rollout = run_learner(env, task.make_learner(learner, env, suite, np.random.default_rng(seed)), suite.horizon, seed)
    return float(rollout.regrets.sum(axis=1).mean())


@pytest.mark.parametrize("learner", ["thompson", "ucb"])
def test_source_algorithms_beat_random_by_a_wide_margin(learner: str) -> None:
    suite = BanditSuite(num_instances=300, means="uniform", horizon=300, seed=5)
    random = final_regret("random", suite)
    assert final_regret(learner, suite) < 0.6 * random
    if learner == "thompson":
        assert final_regret(learner, suite) < 0.3 * random


def test_thompson_sampling_picks_each_arm_with_its_posterior_probability() -> None:
    """After two wins on arm 0 the posteriors are Beta(3, 1) and Beta(1, 1): arm 0 wins the draw
    with probability P(U < X) = E[X] = 3/4. After a loss on arm 1 too (Beta(1, 2), CDF
    1 - (1 - y)^2): P(Y < X) = integral of 3x^2 (2x - x^2) over [0, 1] = 9/10."""
    mask = np.ones((40_000, 2), dtype=bool)
    learner = ThompsonSampling(mask, np.random.default_rng(0))
    pulls = np.zeros(40_000, dtype=np.int64)
    learner.update(None, pulls, np.ones(40_000, dtype=np.float32))
    learner.update(None, pulls, np.ones(40_000, dtype=np.float32))
    assert np.mean(learner.act(None) == 0) == pytest.approx(3 / 4, abs=0.01)
    learner.update(None, pulls + 1, np.zeros(40_000, dtype=np.float32))
    assert np.mean(learner.act(None) == 0) == pytest.approx(9 / 10, abs=0.01)
    with pytest.raises(ValueError, match="prior"):
        ThompsonSampling(mask, np.random.default_rng(0), prior_alpha=0.0)


def test_thompson_policy_estimates_the_arm_probabilities_it_acts_with() -> None:
    """The posteriors of the test above, Beta(3, 1) / Beta(1, 2): arm 0 wins with probability 9/10;
    a third arm is not offered to the second half of the instances."""
    mask = np.ones((2_000, 3), dtype=bool)
    mask[1_000:, 2] = False
    learner = ThompsonSampling(mask, np.random.default_rng(0), policy_draws=64)
    zeros, ones = np.zeros(2_000, dtype=np.int64), np.ones(2_000, dtype=np.float32)
    for arm, reward in ((0, ones), (0, ones), (1, 0 * ones)):
        learner.update(None, zeros + arm, reward)
    learner.act(None)
    probabilities = learner.last_probabilities
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert (probabilities[1_000:, 2] == 0).all()
    # Two arms: the mean estimate is 9/10 (each row an estimate from 64 draws).
    assert probabilities[1_000:, 0].mean() == pytest.approx(9 / 10, abs=0.01)
    assert ThompsonSampling(mask, np.random.default_rng(0)).last_probabilities is None


def test_thompson_policy_source_records_its_probabilities_with_the_histories(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(collect_module, "CHUNK_INSTANCES", 7)  # chunks of different widths
    num_arms, _ = get_task("bandit").train_suite(20, 30, seed=0).sample()
    assert len({num_arms[start : start + 7].max() for start in (0, 7, 14)}) > 1
    store = load_store(collect_module.collect(CollectConfig(
        task="bandit", source="thompson_policy", num_instances=20, horizon=30, out=tmp_path / "store", threads=2,
    )))  # fmt: skip
    probabilities = np.asarray(store.policy_probabilities, dtype=np.float32)
    assert probabilities.shape == (20, 30, store.max_actions)
    np.testing.assert_allclose(probabilities.sum(axis=2), 1.0, atol=1e-3)
    # The first step is uniform over the offered arms: every arm's share is near 1 / K.
    offered = np.asarray(store.action_mask)
    first = probabilities[:, 0]
    assert np.abs(first - offered / offered.sum(axis=1, keepdims=True))[offered].mean() < 0.05


def test_learners_only_pick_available_actions() -> None:
    task = get_task("bandit")
    suite = BanditSuite(num_instances=64, min_arms=2, max_arms=9, means="uniform", horizon=50, seed=1)
    env = task.make_env(suite)
    for name in task.baselines:
        rollout = run_learner(env, task.make_learner(name, env, suite, np.random.default_rng(0)), 50, seed=0)
        taken_available = np.take_along_axis(env.action_mask, rollout.actions, axis=1)
        assert taken_available.all(), name


def test_masked_argmax_breaks_ties_uniformly_and_respects_the_mask() -> None:
    rng = np.random.default_rng(0)
    scores = np.zeros((20_000, 4))
    mask = np.array([[True, False, True, True]] * 20_000)
    counts = np.bincount(masked_argmax(scores, mask, rng), minlength=4) / 20_000
    assert counts[1] == 0
    np.testing.assert_allclose(counts[[0, 2, 3]], 1 / 3, atol=0.02)


def test_suites_are_prefix_stable_and_follow_the_paper_distributions() -> None:
    big = BanditSuite(num_instances=5000, seed=0)
    small = BanditSuite(num_instances=100, seed=0)
    arms_big, means_big = big.sample()
    arms_small, means_small = small.sample()
    np.testing.assert_array_equal(arms_big[:100], arms_small)
    np.testing.assert_array_equal(means_big[:100], means_small)
    assert arms_big.min() == 4 and arms_big.max() == 20
    odd_high = means_big[:, 1] >= 0.5
    assert 0.93 < odd_high.mean() < 0.97
    assert (means_big[odd_high][:, 1::2] >= 0.5).all() and (means_big[odd_high][:, 0::2] < 0.5).all()
    _, inverse = BanditSuite(num_instances=5000, means="inverse", seed=1).sample()
    assert (inverse[:, 1] >= 0.5).mean() < 0.07


def test_named_and_custom_suites() -> None:
    task = get_task("bandit")
    suite = task.parse_suite("num_50", 10, 300, train_seed=0)
    assert (suite.min_arms, suite.max_arms, suite.means) == (50, 50, "uniform")
    custom = task.parse_suite("arms=3-7,means=inverse,instances=12,seed=9", 100, 300, train_seed=0)
    assert (custom.min_arms, custom.max_arms, custom.means, custom.num_instances, custom.seed) == (
        3,
        7,
        "inverse",
        12,
        9,
    )
    with pytest.raises(ValueError, match="at least 2 arms"):
        task.parse_suite("arms=1", 10, 300, train_seed=0)
    with pytest.raises(ValueError, match="unknown bandit suite"):
        task.parse_suite("nonsense", 10, 300, train_seed=0)


def test_collection_gives_the_same_histories_on_any_number_of_threads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(collect_module, "CHUNK_INSTANCES", 50)  # several chunks out of a small set
    stores = [
        load_store(
            collect_module.collect(
                CollectConfig(num_instances=170, horizon=30, threads=threads, out=tmp_path / f"threads{threads}")
            )
        )
        for threads in (1, 3)
    ]
    for name in ("actions", "rewards", "regrets", "action_mask"):
        np.testing.assert_array_equal(getattr(stores[0], name), getattr(stores[1], name))
    # The chunks' masks are padded to the widest chunk and match each instance's own arm count.
    num_arms, _ = get_task("bandit").train_suite(170, 30, seed=0).sample()
    np.testing.assert_array_equal(stores[0].action_mask.sum(axis=1), num_arms)
    assert (stores[0].actions < num_arms[:, None]).all()
