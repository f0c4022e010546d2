"""The Darkroom task: splits, suites, Q-learning collection through the shared rollout, metrics."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image

from envs.darkroom import Darkroom
from headless_ad.collect import CollectConfig, collect, collect_path
from headless_ad.episode_gifs import FRAME_MS, early_and_late, episode_bounds, write_suite_gifs
from headless_ad.histories import load_store
from headless_ad.rollout import Rollout, run_learner
from headless_ad.tasks import get_task
from headless_ad.tasks.action_sets import actions_tried_curves
from headless_ad.tasks.darkroom import DarkroomSuite, DarkroomTask


def test_splits_are_disjoint_reproducible_and_of_the_paper_sizes() -> None:
    splits = DarkroomSuite(num_instances=1).splits
    again = DarkroomSuite(num_instances=5, seed=9).splits
    for name in splits:
        np.testing.assert_array_equal(splits[name], again[name])
    assert (splits["train_goals"].size, splits["test_goals"].size) == (68, 12)
    assert (splits["train_actions"].size, splits["test_actions"].size) == (50, 75)
    assert not set(splits["train_goals"]) & set(splits["test_goals"])
    assert not set(splits["train_actions"]) & set(splits["test_actions"])
    assert 40 not in set(splits["train_goals"]) | set(splits["test_goals"])  # the centre is the start
    other = DarkroomSuite(num_instances=1, split_seed=1).splits
    assert not np.array_equal(splits["train_actions"], other["train_actions"])


def test_eval_suites_draw_from_their_goal_and_action_sets() -> None:
    task = get_task("darkroom")
    splits = DarkroomSuite(num_instances=1).splits
    for spec in task.default_eval_suites:
        suite = task.parse_suite(spec, 40, 100, train_seed=0)
        goals, actions = suite.sample()
        assert set(goals) <= set(splits[f"{suite.goals}_goals"])
        expected = {"train": 50, "train_permuted": 50, "test_50": 50, "test": 75, "all": 125}[suite.actions]
        assert actions.shape == (40, expected)
        if suite.actions in ("test", "test_50"):
            assert set(actions.ravel()) <= set(splits["test_actions"])
    permuted = task.parse_suite("train_goals/train_permuted", 40, 100, 0).sample()[1]
    assert all(set(row) == set(splits["train_actions"]) for row in permuted)
    assert len({tuple(row) for row in permuted}) > 1
    with pytest.raises(ValueError, match="unknown darkroom suite"):
        task.parse_suite("test_goals/everything", 4, 100, 0)
    # Validation rooms: the same kind of suite, other rooms.
    named, validation = (
        task.parse_suite(spec, 40, 100, 0) for spec in ("train_goals/test", "train_goals/test,seed=77")
    )
    assert (validation.goals, validation.actions, validation.seed) == ("train", "test", 77)
    assert not np.array_equal(named.sample()[0], validation.sample()[0])
    with pytest.raises(ValueError, match="expected <suite>,seed=<integer>"):
        task.parse_suite("train_goals/test,seed=x", 4, 100, 0)


def test_action_subsets_vary_in_size_and_stay_in_their_set() -> None:
    task = get_task("darkroom")
    suite = DarkroomSuite(num_instances=400, min_actions=20)
    _, actions = suite.sample()
    np.testing.assert_array_equal(actions, DarkroomSuite(num_instances=400, min_actions=20).sample()[1])
    train_actions = set(suite.splits["train_actions"])
    sizes = (actions >= 0).sum(axis=1)
    assert sizes.min() == 20 and sizes.max() == 50 and len(set(sizes)) > 20
    for row, size in zip(actions, sizes, strict=True):
        assert (row[size:] == -1).all()  # padding only after the offered actions
        assert len(set(row[:size])) == size and set(row[:size]) <= train_actions
    env = task.make_env(suite)
    np.testing.assert_array_equal(env.action_mask.sum(axis=1), sizes)
    for bad in (-1, 51):
        with pytest.raises(ValueError, match=r"min_actions must be in \[0, 50\] \(the 'train' set\)"):
            DarkroomSuite(num_instances=4, min_actions=bad)


def test_collector_records_each_rooms_own_action_subset(tmp_path) -> None:
    config = CollectConfig(task="darkroom", num_instances=30, horizon=60, train_suite="min_actions=20", threads=1)
    assert collect_path(config).name.endswith("-min_actions20")  # never mixed up with the all-50 store
    store = load_store(collect(replace(config, out=tmp_path / "store")))
    offered = store.action_mask.sum(axis=1)
    assert offered.min() >= 20 and len(set(offered)) > 5
    taken = np.asarray(store.actions)
    assert (taken < offered[:, None]).all()  # Q-learning never steps an action the room lacks


def test_collector_records_q_learnings_epsilon_greedy_distribution(tmp_path) -> None:
    """The recorded distribution predicts the action taken: it is the greedy one with
    probability 1 - epsilon + epsilon / (actions offered), and epsilon decays from 1 to 0."""
    config = CollectConfig(task="darkroom", num_instances=200, horizon=600, train_suite="min_actions=20", threads=1)
    store = load_store(collect(replace(config, out=tmp_path / "store")))
    spread, greedy = np.asarray(store.policy_spread, dtype=np.float64), np.asarray(store.policy_actions)
    offered = store.action_mask.sum(axis=1)[:, None]
    expected = (1 - spread) + spread / offered
    matched = greedy == np.asarray(store.actions)
    assert abs(matched.mean() - expected.mean()) < 0.01
    assert (spread[:, 0] == 1).all() and (np.diff(spread, axis=1) <= 0).all() and (spread[:, -1] < 0.2).all()
    assert (
        load_store(collect(replace(config, task="bandit", train_suite="", out=tmp_path / "b"))).policy_actions is None
    )


def test_q_learning_through_the_shared_rollout_beats_random() -> None:
    task = get_task("darkroom")
    suite = DarkroomSuite(num_instances=100, horizon=2_000, seed=3)
    scores = {}
    for name in task.baselines:
        env = task.make_env(suite)
        rollout = run_learner(env, task.make_learner(name, env, suite, np.random.default_rng(0)), suite.horizon, 0)
        scores[name] = task.metric(rollout)
    assert scores["q_learning"] > 0.8 and scores["q_learning"] > scores["random"] + 0.4


def test_episode_returns_split_histories_at_episode_ends() -> None:
    rewards = np.array([[0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32)
    dones = np.array([[0, 1, 0, 0, 1, 0], [0, 0, 1, 0, 0, 1]], dtype=bool)
    rollout = Rollout(rewards.astype(np.int64), rewards, rewards, dones, None)
    returns = DarkroomTask.episode_returns(rollout)
    np.testing.assert_array_equal(returns, [[1, 1], [0, 0]])
    assert DarkroomTask().metric(rollout) == pytest.approx(0.5)
    episodes, curve = DarkroomTask().curve(rollout)
    np.testing.assert_array_equal(episodes, [1, 2])
    np.testing.assert_allclose(curve, [0.5, 0.5])


def test_metric_averages_each_rooms_last_50_episodes_with_rooms_weighted_equally() -> None:
    # Room 0: 60 one-step episodes, the first 10 rewarded, so its last 50 return 0. Room 1: 2
    # episodes, one rewarded (0.5). Room 2: no completed episode (left out, not counted as 0).
    steps = 60
    rewards = np.zeros((3, steps), dtype=np.float32)
    dones = np.zeros((3, steps), dtype=bool)
    rewards[0, :10], dones[0] = 1, True
    rewards[1, 29], dones[1, [29, 59]] = 1, True
    rollout = Rollout(np.zeros((3, steps), dtype=np.int64), rewards, rewards, dones, None)
    per_room = DarkroomTask.last_episode_returns(rollout)
    np.testing.assert_array_equal(per_room[:2], [0.0, 0.5])
    assert np.isnan(per_room[2])
    assert DarkroomTask().metric(rollout) == pytest.approx(0.25)


def test_all_actions_suite_reports_which_train_and_test_actions_were_tried() -> None:
    task = DarkroomTask()
    suite = task.parse_suite("test_goals/all", num_instances=4, horizon=30, train_seed=0)
    _, offered = suite.sample()
    train_actions = suite.splits["train_actions"]
    # Every instance pulls only the slots holding the first 10 train action sequences.
    slots = np.stack([np.flatnonzero(np.isin(row, train_actions[:10])) for row in offered])
    actions = np.tile(slots, 3)
    rollout = Rollout(
        actions=actions,
        rewards=np.zeros(actions.shape, dtype=np.float32),
        observations=np.zeros(actions.shape, dtype=np.int64),
        dones=np.zeros(actions.shape, dtype=bool),
        regrets=None,
    )
    tried = task.extra_metrics(suite, rollout)
    assert tried == {"train actions tried": 10 / 50, "test actions tried": 0.0}
    assert task.extra_metrics(task.parse_suite("test_goals/test", 4, 30, 0), rollout) == {}


def test_actions_tried_curves_count_each_macro_once_by_the_end_of_every_episode() -> None:
    offered = np.array([[4, 0, 2, 1, 3], [0, 1, 2, 3, 4]])
    # Instance 0 tries macros 4, 0 | 4, 2 | 4, 4; instance 1 tries 0, 0 | 1, 1 | 3, 3 (slot = macro).
    actions = np.array([[0, 1, 0, 2, 0, 0], [0, 0, 1, 1, 3, 3]])
    dones = np.zeros(actions.shape, dtype=bool)
    dones[:, [1, 3, 5]] = True
    dones[1, 4] = True  # instance 1 ends a 4th episode early: only the 3 common episodes count
    curves = actions_tried_curves(offered, actions, dones, {"even": np.array([0, 2, 4]), "odd": np.array([1, 3])})
    episodes, even = curves["even"]
    np.testing.assert_array_equal(episodes, [1, 2, 3])
    np.testing.assert_allclose(even, [[2 / 3, 1, 1], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(curves["odd"][1], [[0, 0, 0], [0, 1 / 2, 1]])
    assert actions_tried_curves(offered, actions, np.zeros_like(dones), {"even": np.array([0])}) == {}


def test_all_actions_suite_saves_action_shares_over_episodes() -> None:
    task = DarkroomTask()
    suite = task.parse_suite("test_goals/all", num_instances=4, horizon=40, train_seed=0)
    _, offered = suite.sample()
    train_slots = np.stack([np.flatnonzero(np.isin(row, suite.splits["train_actions"]))[:4] for row in offered])
    actions = np.repeat(train_slots, 10, axis=1)  # one new train action every 10 steps
    dones = np.zeros(actions.shape, dtype=bool)
    dones[:, 9::10] = True
    rollout = Rollout(actions, np.zeros(actions.shape, np.float32), np.zeros(actions.shape, np.int64), dones, None)
    curves = task.extra_curves(suite, rollout)
    np.testing.assert_allclose(curves["train actions tried"][1], np.tile([1, 2, 3, 4], (4, 1)) / 50)
    np.testing.assert_array_equal(curves["test actions tried"][1], 0)
    assert task.extra_curves(task.parse_suite("test_goals/test", 4, 40, 0), rollout) == {}


def test_darkroom_draws_the_agent_and_the_goal() -> None:
    env = Darkroom(size=5, goal=0, actions=[0], render_mode="rgb_array")
    env.reset()
    frame = env.render()
    pixels = Darkroom.cell_pixels
    assert frame.shape == (5 * pixels, 5 * pixels, 3) and frame.dtype == np.uint8

    def centre(cell: int) -> np.ndarray:
        row, col = divmod(cell, 5)
        return frame[row * pixels + pixels // 2, col * pixels + pixels // 2]

    assert tuple(centre(0)) == (60, 200, 80)  # the goal
    assert tuple(centre(env.start)) == (230, 60, 50)  # the agent, on the start cell
    assert Darkroom(size=5).render() is None  # no render mode: nothing drawn
    check_env(gym.make("Darkroom-v0", render_mode="rgb_array").unwrapped, skip_render_check=False)


def test_gif_of_a_rooms_early_and_late_episodes(tmp_path) -> None:
    task = get_task("darkroom")
    suite = task.parse_suite("test_goals/test", 2, 600, train_seed=0)
    env = task.make_env(suite)
    rollout = run_learner(env, task.make_learner("q_learning", env, suite, np.random.default_rng(0)), 600, seed=0)
    (path,) = write_suite_gifs(task, "test_goals/test", suite, rollout, 1, tmp_path)
    bounds = episode_bounds(rollout.dones[0])
    expected = sum(bounds[e][1] - bounds[e][0] + 1 for e in early_and_late(len(bounds)))
    with Image.open(path) as gif:
        durations = []
        for frame in range(gif.n_frames):
            gif.seek(frame)
            durations.append(gif.info["duration"])
    assert sum(durations) == expected * FRAME_MS  # the start of each episode, then one frame per action


def test_training_puts_pictures_of_episodes_in_tensorboard(tmp_path, monkeypatch) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from headless_ad.__main__ import main

    monkeypatch.chdir(tmp_path)
    tiny = [
        "--collect.num-instances", "16", "--collect.horizon", "200", "--seq-len", "40", "--episode-stride", "1",
        "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2", "--batch-size", "2",
        "--total-steps", "2", "--warmup-steps", "1", "--eval-instances", "2", "--eval-horizon", "100",
        "--eval-suites", "test_goals/test", "--threads", "1", "--eval-pictures",
    ]  # fmt: skip
    monkeypatch.setattr("sys.argv", ["headless_ad", "train", "darkroom", "--run-name", "pictures", *tiny])
    main()
    images = EventAccumulator(str(tmp_path / "runs/pictures"), size_guidance={"images": 0}).Reload()
    assert "eval/test_goals/test/episodes_sample" in images.Tags()["images"]
