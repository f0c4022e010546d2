"""The MiniGrid task: layout and action splits, suites, Q-learning on the twin, bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from envs.minigrid import distinct_layouts
from headless_ad.__main__ import main
from headless_ad.episode_gifs import FRAME_MS, early_and_late, episode_bounds, write_suite_gifs
from headless_ad.histories import load_store
from headless_ad.rollout import run_learner
from headless_ad.tasks import get_task
from headless_ad.tasks.minigrid import MiniGridSuite, check_solvable

DOORKEY = "MiniGrid-DoorKey-5x5-v0"


def test_splits_are_disjoint_reproducible_and_cover_the_layouts() -> None:
    splits = MiniGridSuite(num_instances=1).splits
    again = MiniGridSuite(num_instances=5, seed=9, layouts="test").splits
    for name in splits:
        np.testing.assert_array_equal(splits[name], again[name])
    assert (splits["train_layouts"].size, splits["test_layouts"].size) == (38, 10)
    assert (splits["train_actions"].size, splits["test_actions"].size) == (50, 75)
    assert not set(splits["train_layouts"]) & set(splits["test_layouts"])
    assert set(splits["train_layouts"]) | set(splits["test_layouts"]) == set(distinct_layouts(DOORKEY))
    assert not set(splits["train_actions"]) & set(splits["test_actions"])
    other = MiniGridSuite(num_instances=1, split_seed=1).splits
    assert not np.array_equal(splits["test_layouts"], other["test_layouts"])


def test_eval_suites_draw_from_their_layout_and_action_sets() -> None:
    task = get_task("minigrid")
    splits = MiniGridSuite(num_instances=1).splits
    for spec in task.default_eval_suites:
        suite = task.parse_suite(spec, 30, 100, train_seed=0)
        layouts, actions = suite.sample()
        assert set(layouts) <= set(splits[f"{suite.layouts}_layouts"])
        expected = {"train": 50, "train_permuted": 50, "test_50": 50, "test": 75, "all": 125}[suite.actions]
        assert actions.shape == (30, expected)
        if suite.actions in ("test", "test_50"):
            assert set(actions.ravel()) <= set(splits["test_actions"])
        task.make_env(suite)  # every layout of every named suite is solvable with its action set
    assert task.parse_suite("test_layouts/test", 30, 100, 0).describe()["minigrid_version"] == "3.2.0"
    with pytest.raises(ValueError, match="unknown minigrid suite 'test_goals/test'"):
        task.parse_suite("test_goals/test", 4, 100, 0)


def test_q_learning_solves_doorkey_on_fixed_seeds() -> None:
    task = get_task("minigrid")
    suite = task.train_suite(60, 3_000, seed=3)
    env = task.make_env(suite)
    rollout = run_learner(env, task.make_learner("q_learning", env, suite, np.random.default_rng(3)), 3_000, seed=3)
    success = task.success_rates(rollout)
    assert success.mean() > 0.7 and task.metric(rollout) > 0.5
    random = run_learner(env, task.make_learner("random", env, suite, np.random.default_rng(3)), 3_000, seed=3)
    assert task.success_rates(random).mean() < 0.2


def test_bad_input_gets_one_clear_line() -> None:
    with pytest.raises(ValueError, match="unknown minigrid environment id 'MiniGrid-Nope-v0'"):
        MiniGridSuite(num_instances=1, env_id="MiniGrid-Nope-v0")
    with pytest.raises(ValueError, match="MiniGrid-Empty-6x6-v0 has 1 distinct layout"):
        MiniGridSuite(num_instances=1, env_id="MiniGrid-Empty-6x6-v0", layouts="test")
    with pytest.raises(ValueError, match=r"layout seed \d+ of MiniGrid-DoorKey-5x5-v0 cannot reach the goal"):
        check_solvable(DOORKEY, distinct_layouts(DOORKEY)[:3], np.array([0, 31, 62]), "turning")
    with pytest.raises(ValueError, match="unknown key 'arms'"):
        get_task("minigrid").train_suite(4, 100, 0, "arms=3")
    with pytest.raises(ValueError, match=r"min_actions must be in \[0, 50\]"):
        get_task("minigrid").train_suite(4, 100, 0, "min_actions=51")


def test_preset_round_trip_collect_train_evaluate(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["--collect.num-instances", "24", "--collect.horizon", "200", "--seq-len", "24", "--episode-stride", "2",
            "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2", "--batch-size", "4",
            "--total-steps", "3", "--warmup-steps", "1", "--eval-every", "0", "--eval-instances", "4",
            "--eval-suites", "test_layouts/test", "--threads", "1", "--eval-horizon", "60"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["headless_ad", "train", "minigrid", "--run-name", "mg", *args])
    main()
    out = capsys.readouterr().out
    assert "| test_layouts/test |" in out and "success rate (last 50 episodes)" in out
    store = load_store(tmp_path / "runs/histories/minigrid-q_learning-n24-t200-s0-min_actions25")
    assert store.meta["suite"]["minigrid_version"] == "3.2.0"
    task = get_task("minigrid")
    assert np.asarray(store.observations).max() < task.observation_size(task.train_suite(1, 1, 0))
    monkeypatch.setattr(sys, "argv", ["headless_ad", "evaluate", "--checkpoint", "runs/mg/checkpoint.pt",
                                      "--num-instances", "2", "--suites", "train_layouts/train", "--horizon", "50",
                                      "--selection", "sample", "--gifs", "1", "--threads", "1"])  # fmt: skip
    main()
    with Image.open(tmp_path / "runs/mg/train_layouts_train-sample-instance0.gif") as gif:
        assert gif.n_frames > 1


def test_gif_of_early_and_late_episodes_lasts_one_frame_per_macro_action(tmp_path: Path) -> None:
    task = get_task("minigrid")
    suite = task.parse_suite("test_layouts/test", 2, 400, train_seed=0)
    env = task.make_env(suite)
    rollout = run_learner(env, task.make_learner("q_learning", env, suite, np.random.default_rng(0)), 400, seed=0)
    paths = write_suite_gifs(task, "test_layouts/test", suite, rollout, 1, tmp_path)
    bounds = episode_bounds(rollout.dones[0])
    episodes = early_and_late(len(bounds))
    assert len(episodes) == 4 and len(bounds) > 4
    # The start of each episode, then one frame per macro-action.
    expected = sum(bounds[e][1] - bounds[e][0] + 1 for e in episodes)
    with Image.open(paths[0]) as gif:
        durations = []
        for frame in range(gif.n_frames):
            gif.seek(frame)
            durations.append(gif.info["duration"])
        assert gif.n_frames > 4 and gif.size[0] > 0
    assert sum(durations) == expected * FRAME_MS
