"""History store: atomic writes, clear errors on damage, windows with the right shift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from headless_ad import histories
from headless_ad.histories import HistoryStoreError, WindowSampler, load_store, write_store


def small_arrays(num: int = 6, horizon: int = 10) -> dict[str, np.ndarray]:
    actions = (np.arange(num * horizon).reshape(num, horizon) % 3).astype(np.int16)
    rewards = (np.arange(num * horizon).reshape(num, horizon) / 100).astype(np.float32)
    return {"actions": actions, "rewards": rewards, "action_mask": np.ones((num, 3), dtype=bool)}


def test_round_trip_is_memory_mapped(tmp_path: Path) -> None:
    write_store(tmp_path / "store", {"task": "bandit"}, small_arrays())
    store = load_store(tmp_path / "store")
    assert isinstance(store.actions, np.memmap)
    assert (store.num_instances, store.horizon, store.max_actions) == (6, 10, 3)
    assert store.meta["task"] == "bandit" and store.meta["format_version"] == histories.FORMAT_VERSION


def test_interrupted_write_leaves_nothing_that_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = np.save
    calls = []

    def save_then_crash(file, array):
        calls.append(file)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_save(file, array)

    monkeypatch.setattr(histories.np, "save", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        write_store(tmp_path / "store", {}, small_arrays())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(HistoryStoreError, match="no history store"):
        load_store(tmp_path / "store")


def test_existing_store_is_kept_unless_overwritten(tmp_path: Path) -> None:
    write_store(tmp_path / "store", {"version": "a"}, small_arrays())
    with pytest.raises(FileExistsError):
        write_store(tmp_path / "store", {"version": "b"}, small_arrays())
    write_store(tmp_path / "store", {"version": "b"}, small_arrays(), overwrite=True)
    assert load_store(tmp_path / "store").meta["version"] == "b"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "meta.json").unlink(), "meta.json: missing"),
        (lambda p: (p / "meta.json").write_text("{not json"), "meta.json: not valid JSON"),
        (lambda p: (p / "rewards.npy").unlink(), "rewards.npy: missing"),
        (lambda p: (p / "actions.npy").write_bytes(b"garbage"), "actions.npy: unreadable"),
        (lambda p: np.save(p / "rewards.npy", np.zeros((6, 4))), "rewards.npy: shape"),
        (
            lambda p: (p / "meta.json").write_text(json.dumps({"format_version": 99})),
            "format_version 99",
        ),
    ],
)
def test_damaged_store_names_the_file_and_the_problem(tmp_path: Path, damage, message: str) -> None:
    write_store(tmp_path / "store", {}, small_arrays())
    damage(tmp_path / "store")
    with pytest.raises(HistoryStoreError, match=message):
        load_store(tmp_path / "store")


@pytest.mark.parametrize(
    ("array", "value", "message"),
    [
        ("policy_actions", 3, "policy_actions.npy: history 0 names action 3 at step 0, which its action_mask"),
        ("policy_spread", 1.5, r"policy_spread.npy: values outside \[0, 1\] in history 0"),
        ("policy_spread", np.nan, r"policy_spread.npy: values outside \[0, 1\] in history 0"),
    ],
)
def test_a_recorded_policy_that_cannot_be_one_is_named(tmp_path: Path, array: str, value: float, message: str) -> None:
    arrays = small_arrays()
    arrays["policy_actions"] = arrays["actions"].copy()
    arrays["policy_spread"] = np.zeros((6, 10), dtype=np.float16)
    arrays[array][0, 0] = value
    write_store(tmp_path / "store", {}, arrays)
    with pytest.raises(HistoryStoreError, match=message):
        load_store(tmp_path / "store")
    del arrays["policy_spread"]
    write_store(tmp_path / "store", {}, arrays, overwrite=True)
    with pytest.raises(HistoryStoreError, match="policy_actions and policy_spread come together"):
        load_store(tmp_path / "store")


@pytest.mark.parametrize(
    ("cell", "value", "message"),
    [
        ((0, 0, 1), 1.5, r"policy_probabilities.npy: values outside \[0, 1\], or on actions"),
        ((0, 0, 1), np.nan, r"policy_probabilities.npy: values outside \[0, 1\], or on actions"),
        ((1, 3, 2), 0.25, r"policy_probabilities.npy: .* on actions the action_mask does not offer, in history 1"),
    ],
)
def test_recorded_probabilities_that_cannot_be_a_policy_are_named(tmp_path: Path, cell, value, message) -> None:
    arrays = small_arrays()
    arrays["action_mask"][1, 2] = False
    arrays["actions"][1] %= 2
    arrays["policy_probabilities"] = np.zeros((6, 10, 3), dtype=np.float16)
    arrays["policy_probabilities"][..., 0] = 1.0
    write_store(tmp_path / "store", {}, arrays)
    load_store(tmp_path / "store")
    arrays["policy_probabilities"][cell] = value
    write_store(tmp_path / "store", {}, arrays, overwrite=True)
    with pytest.raises(HistoryStoreError, match=message):
        load_store(tmp_path / "store")
    arrays["policy_probabilities"] = np.zeros((6, 10, 4), dtype=np.float16)
    write_store(tmp_path / "store", {}, arrays, overwrite=True)
    with pytest.raises(HistoryStoreError, match="4 actions per step, action_mask has 3"):
        load_store(tmp_path / "store")


def test_policy_targets_can_be_whole_distributions(tmp_path: Path) -> None:
    arrays = small_arrays()
    # Each step's distribution says which step it belongs to: (step, 10 - step) / 10 on actions 0, 2.
    steps = np.broadcast_to(np.arange(10), (6, 10))
    arrays["actions"] = (steps % 3).astype(np.int16)
    arrays["policy_probabilities"] = np.stack([steps / 10, 0 * steps, 1 - steps / 10], axis=-1).astype(np.float16)
    write_store(tmp_path / "store", {}, arrays)
    batch = WindowSampler(
        load_store(tmp_path / "store"), seq_len=4, batch_size=32, seed=0, policy_targets=True
    ).sample()
    probabilities = batch.target_probabilities.numpy()
    step = np.rint(probabilities[..., 0] * 10).astype(int)
    assert (np.diff(step, axis=1) == 1).all()  # consecutive steps of the window
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(batch.targets.numpy(), step % 3)  # the actions taken stay the targets
    assert batch.target_spread is None


def test_windows_pair_each_step_with_the_previous_action_and_reward(tmp_path: Path) -> None:
    write_store(tmp_path / "store", {}, small_arrays())
    store = load_store(tmp_path / "store")
    sampler = WindowSampler(store, seq_len=4, batch_size=32, seed=0)
    batch = sampler.sample()
    actions, rewards = np.asarray(store.actions), np.asarray(store.rewards)
    for row in range(32):
        # Rewards encode (instance, step) uniquely: value = (instance * horizon + step) / 100.
        targets = batch.targets[row].numpy()
        prev = batch.prev_actions[row].numpy()
        got = batch.prev_rewards[row].numpy()
        flat = round(float(got[-1]) * 100)
        instance, last_prev_step = divmod(flat, 10)
        assert np.array_equal(targets[-1], actions[instance, last_prev_step + 1])
        if prev[0] == -1:
            assert got[0] == 0.0 and targets[0] == actions[instance, 0]
        else:
            np.testing.assert_allclose(got, rewards[instance, last_prev_step - 3 : last_prev_step + 1])
            np.testing.assert_array_equal(prev, actions[instance, last_prev_step - 3 : last_prev_step + 1])
            np.testing.assert_array_equal(targets, actions[instance, last_prev_step - 2 : last_prev_step + 2])


def test_policy_targets_are_the_recorded_distribution_at_each_window_step(tmp_path: Path) -> None:
    arrays = small_arrays()
    # Greedy action = (step + 1) % 3 and spread = step / 10: each says which step it belongs to.
    steps = np.broadcast_to(np.arange(10), (6, 10))
    arrays["actions"] = (steps % 3).astype(np.int16)
    arrays["policy_actions"] = ((steps + 1) % 3).astype(np.int16)
    arrays["policy_spread"] = (steps / 10).astype(np.float16)
    write_store(tmp_path / "store", {}, arrays)
    batch = WindowSampler(
        load_store(tmp_path / "store"), seq_len=4, batch_size=32, seed=0, policy_targets=True
    ).sample()
    step = np.rint(batch.target_spread.numpy() * 10).astype(int)
    assert (np.diff(step, axis=1) == 1).all()  # consecutive steps of the window
    np.testing.assert_array_equal(batch.targets.numpy(), (step + 1) % 3)
    taken = batch.prev_actions.numpy()[:, 1:]
    np.testing.assert_array_equal(taken, (step[:, :-1] % 3))  # inputs stay the actions taken
    write_store(tmp_path / "plain", {}, small_arrays())
    with pytest.raises(ValueError, match=r"--policy-targets: .* does not record"):
        WindowSampler(load_store(tmp_path / "plain"), seq_len=4, batch_size=2, seed=0, policy_targets=True)


def test_windows_carry_the_previous_observation_and_episode_end(tmp_path: Path) -> None:
    arrays = small_arrays()
    # Observation = (instance * horizon + step) so every entry says where it came from.
    arrays["observations"] = np.arange(60).reshape(6, 10).astype(np.int16)
    arrays["dones"] = np.arange(60).reshape(6, 10) % 4 == 3
    write_store(tmp_path / "store", {}, arrays)
    store = load_store(tmp_path / "store")
    batch = WindowSampler(store, seq_len=4, batch_size=32, seed=1).sample()
    for row in range(32):
        observations = batch.observations[row].numpy()
        prev = batch.prev_observations[row].numpy()
        np.testing.assert_array_equal(prev[1:], observations[:-1])
        first = int(observations[0])
        if first % 10 == 0:  # a history's first step has no previous observation or episode end
            assert prev[0] == -1 and not batch.prev_dones[row, 0]
        else:
            assert prev[0] == first - 1
        np.testing.assert_array_equal(batch.prev_dones[row].numpy()[prev >= 0], prev[prev >= 0] % 4 == 3)


def test_start_share_cuts_that_share_of_windows_at_the_start_of_a_history(tmp_path: Path) -> None:
    arrays = small_arrays(num=6, horizon=400)
    write_store(tmp_path / "store", {}, arrays)
    store = load_store(tmp_path / "store")
    for share, low, high in [(0.0, 0, 40), (0.5, 400, 600), (1.0, 1000, 1000)]:
        sampler = WindowSampler(store, seq_len=4, batch_size=1000, seed=0, start_share=share)
        at_start = int((sampler.sample().prev_actions[:, 0] == -1).sum())
        assert low <= at_start <= high, (share, at_start)
    with pytest.raises(ValueError, match="start_share"):
        WindowSampler(store, seq_len=4, batch_size=2, seed=0, start_share=1.5)


def test_window_longer_than_histories_is_refused(tmp_path: Path) -> None:
    write_store(tmp_path / "store", {}, small_arrays())
    with pytest.raises(ValueError, match="longer than the histories"):
        WindowSampler(load_store(tmp_path / "store"), seq_len=11, batch_size=2, seed=0)


def test_rank_shards_partition_the_global_batch(tmp_path: Path) -> None:
    write_store(tmp_path / "store", {}, small_arrays(num=20))
    store = load_store(tmp_path / "store")
    whole = WindowSampler(store, seq_len=4, batch_size=6, seed=3).sample()
    shards = [WindowSampler(store, seq_len=4, batch_size=6, seed=3, shard=(rank, 2)).sample() for rank in (0, 1)]
    for field in ("prev_actions", "prev_rewards", "targets", "action_mask"):
        parts = [getattr(shard, field) for shard in shards]
        assert parts[0].shape[0] == 3
        np.testing.assert_array_equal(np.concatenate(parts), getattr(whole, field))


def test_episode_stride_windows_hold_every_kth_episode_in_order(tmp_path: Path) -> None:
    arrays = small_arrays(num=6, horizon=40)
    arrays["observations"] = np.arange(240).reshape(6, 40).astype(np.int16)  # = instance * 40 + step
    arrays["dones"] = np.arange(240).reshape(6, 40) % 4 == 3  # episodes of 4 steps
    write_store(tmp_path / "store", {}, arrays)
    store = load_store(tmp_path / "store")
    batch = WindowSampler(store, seq_len=8, batch_size=64, seed=2, episode_stride=3, start_share=0.25).sample()
    for row in range(64):
        steps = batch.observations[row].numpy() % 40
        episodes = steps // 4
        assert len(set(episodes % 3)) == 1, episodes  # one residue class per window
        gaps = np.diff(steps)
        # Inside an episode the steps are consecutive; across a boundary they skip two episodes.
        assert set(gaps) <= {1, 9}, steps
        assert all(steps[t + 1] % 4 == 0 for t in np.flatnonzero(gaps == 9))
        prev = batch.prev_observations[row].numpy()
        np.testing.assert_array_equal(prev[1:], batch.observations[row].numpy()[:-1])
        # The step before the window is the previous kept step, or none at the residue's start.
        if steps[0] == episodes[0] % 3 * 4:
            assert prev[0] == -1 and batch.prev_actions[row, 0] == -1
        else:
            assert prev[0] % 40 in (steps[0] - 1, steps[0] - 9)
        np.testing.assert_array_equal(batch.prev_dones[row].numpy()[1:], steps[:-1] % 4 == 3)
    # 10 episodes: residue 0 holds 4 of them (16 steps), residues 1 and 2 three (12 steps).
    sampler = WindowSampler(store, seq_len=13, batch_size=64, seed=0, episode_stride=3)
    assert sampler.short_residue_share == pytest.approx(2 / 3)
    assert set((sampler.sample().observations.numpy() % 40 // 4 % 3).ravel()) == {0}
    with pytest.raises(ValueError, match="holds only 16 steps"):
        WindowSampler(store, seq_len=17, batch_size=2, seed=0, episode_stride=3)
    del arrays["dones"]
    write_store(tmp_path / "no-dones", {}, arrays)
    with pytest.raises(ValueError, match="needs episode ends"):
        WindowSampler(load_store(tmp_path / "no-dones"), seq_len=4, batch_size=2, seed=0, episode_stride=2)
