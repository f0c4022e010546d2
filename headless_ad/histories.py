"""On-disk store of learning histories, and the window sampler that feeds training.

A store is a directory:

    meta.json           format_version, task, source algorithm, env parameters, seed,
                        collector_version (see collect.COLLECTOR_VERSION), shapes
    actions.npy         int16   (N, T)   action taken at step t (index into the instance's actions)
    rewards.npy         float32 (N, T)   reward received for it
    observations.npy    (N, T) int16 for discrete observations, (N, T, d) float32 for continuous;
                        absent when the task has no observations
    action_mask.npy     bool    (N, A)   which action indices instance i offers
    regrets.npy         float32 (N, T)   per-step regret of the source algorithm, when known
    dones.npy           bool    (N, T)   step t ended an episode (terminated or truncated)

The directory is assembled under a temporary name and renamed into place only when complete,
so an interrupted collection never leaves a store that loads. Arrays are memory-mapped on load.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_VERSION = 1
_REQUIRED = ("actions", "rewards", "action_mask")


class HistoryStoreError(ValueError):
    """A history store is missing, incomplete, corrupt or of another format."""


@dataclass
class HistoryStore:
    path: Path
    meta: dict[str, Any]
    actions: np.ndarray
    rewards: np.ndarray
    action_mask: np.ndarray
    observations: np.ndarray | None = None
    regrets: np.ndarray | None = None
    dones: np.ndarray | None = None

    @property
    def num_instances(self) -> int:
        return self.actions.shape[0]

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]

    @property
    def max_actions(self) -> int:
        return self.action_mask.shape[1]


def write_store(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray], overwrite: bool = False) -> None:
    """Write a complete store atomically (temporary directory, then rename)."""
    path = Path(path)
    missing = [name for name in _REQUIRED if name not in arrays]
    if missing:
        raise ValueError(f"a history store needs arrays {missing}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        meta = {**meta, "format_version": FORMAT_VERSION, "arrays": sorted(arrays)}
        # meta.json is written last: a directory without it was never finished.
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_store(path: Path) -> HistoryStore:
    """Open a store, memory-mapped, after checking that it is complete and consistent."""
    path = Path(path)
    if not path.is_dir():
        raise HistoryStoreError(f"{path}: no history store here (run `python -m headless_ad collect` first)")
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        raise HistoryStoreError(f"{meta_file}: missing; the collection that wrote {path} did not finish")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as error:
        raise HistoryStoreError(f"{meta_file}: not valid JSON ({error})") from None
    if not isinstance(meta, dict):
        raise HistoryStoreError(f"{meta_file}: not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise HistoryStoreError(
            f"{meta_file}: format_version {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}"
        )
    arrays: dict[str, np.ndarray] = {}
    known = {f.name for f in fields(HistoryStore)} - {"path", "meta"}
    for name in meta.get("arrays", []):
        if name not in known:
            raise HistoryStoreError(f"{meta_file}: unknown array {name!r}")
        file = path / f"{name}.npy"
        if not file.is_file():
            raise HistoryStoreError(f"{file}: missing")
        try:
            arrays[name] = np.load(file, mmap_mode="r")
        except (ValueError, OSError) as error:
            raise HistoryStoreError(f"{file}: unreadable ({error})") from None
    for name in _REQUIRED:
        if name not in arrays:
            raise HistoryStoreError(f"{path}: array {name!r} is not listed in meta.json")
    num, horizon = arrays["actions"].shape
    for name in ("rewards", "observations", "regrets", "dones"):
        if name in arrays and arrays[name].shape[:2] != (num, horizon):
            raise HistoryStoreError(
                f"{path / (name + '.npy')}: shape {arrays[name].shape} does not match actions {(num, horizon)}"
            )
    mask = arrays["action_mask"]
    if mask.shape[0] != num:
        raise HistoryStoreError(f"{path / 'action_mask.npy'}: {mask.shape[0]} rows for {num} histories")
    return HistoryStore(path=path, meta=meta, **arrays)


@dataclass
class Batch:
    """A batch of history windows, as tensors."""

    observations: torch.Tensor | None  # (B, L) or (B, L, d)
    prev_observations: torch.Tensor | None  # like observations; -1 / zeros where there is none
    prev_dones: torch.Tensor | None  # (B, L) bool: the previous step ended an episode
    prev_actions: torch.Tensor  # (B, L) int64, -1 where there is no previous action
    prev_rewards: torch.Tensor  # (B, L) float32
    targets: torch.Tensor  # (B, L) int64: the action the source algorithm took
    action_mask: torch.Tensor  # (B, A) bool


class WindowSampler:
    """Samples (instance, window start) uniformly and cuts `seq_len`-step windows out of a store.

    `start_share`: the share of windows cut at the very start of a history instead (evaluation
    begins with an empty context, which uniform starts in long histories almost never show).

    `episode_stride=k` (episodic tasks): a window holds every k-th episode of a history (those
    with index = r mod k, for a random r), so it shows k times the learning progress of a
    contiguous window; the kept episodes follow each other exactly as episodes of one history do.

    `shard=(rank, world_size)`: every rank draws the
    same global batch of `batch_size` windows and keeps its contiguous block of rows
    (`shard_rows`), so data-parallel training sees exactly the batches of a single process.
    """

    def __init__(
        self,
        store: HistoryStore,
        seq_len: int,
        batch_size: int,
        seed: int,
        device: torch.device | str = "cpu",
        shard: tuple[int, int] = (0, 1),
        start_share: float = 0.0,
        episode_stride: int = 1,
    ) -> None:
        if not 0.0 <= start_share <= 1.0:
            raise ValueError(f"start_share must be in [0, 1], got {start_share}")
        if seq_len > store.horizon:
            raise ValueError(f"seq_len={seq_len} is longer than the histories in {store.path} ({store.horizon} steps)")
        if episode_stride < 1:
            raise ValueError(f"episode_stride must be >= 1, got {episode_stride}")
        self.episode_stride = episode_stride
        if episode_stride > 1:
            self._index_strided_episodes(store, seq_len, episode_stride)
        self.store = store
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.start_share = start_share
        rank, world_size = shard
        per_rank = batch_size // world_size
        self.shard_rows = slice(rank * per_rank, (rank + 1) * per_rank)

    def _index_strided_episodes(self, store: HistoryStore, seq_len: int, stride: int) -> None:
        """Order each history's steps by (episode index mod stride, step): residue r's steps are
        then the contiguous run `order[i, group_start[i, r] : group_start[i, r] + group_len[i, r]]`."""
        if store.dones is None:
            raise ValueError(f"episode_stride needs episode ends (dones), which {store.path} does not hold")
        dones = np.asarray(store.dones)
        episode = np.cumsum(dones, axis=1, dtype=np.int32) - dones  # episode index of each step
        residue = episode % stride
        self.order = np.argsort(residue * store.horizon + np.arange(store.horizon), axis=1).astype(np.int32)
        self.group_len = np.stack([(residue == r).sum(axis=1) for r in range(stride)], axis=1)
        self.group_start = np.cumsum(self.group_len, axis=1) - self.group_len
        # A residue with fewer than seq_len steps lends its windows to the history's longest one.
        self.longest_residue = self.group_len.argmax(axis=1)
        shortest = int(self.group_len.max(axis=1).min())
        if shortest < seq_len:
            raise ValueError(
                f"episode_stride={stride}: a history of {store.path} holds only {shortest} steps in the "
                f"episodes of any one residue mod {stride}, fewer than seq_len={seq_len}: collect longer "
                "histories or lower the stride"
            )
        self.short_residue_share = float((self.group_len < seq_len).mean())

    def _window_steps(self, rows: np.ndarray) -> np.ndarray:
        """(B, seq_len + 1) step indices of each window and of the step before it (-1: none)."""
        length, count = self.seq_len, len(rows)
        if self.episode_stride == 1:
            starts = self.rng.integers(0, self.store.horizon - length + 1, count)
        else:
            residues = self.rng.integers(0, self.episode_stride, count)
            short = self.group_len[rows, residues] < length
            residues[short] = self.longest_residue[rows[short]]
            starts = (self.rng.random(count) * (self.group_len[rows, residues] - length + 1)).astype(np.int64)
        if self.start_share > 0:  # (no extra draws otherwise, so default runs keep their stream)
            at_start = self.rng.random(count) < self.start_share
            starts[at_start] = 0
            if self.episode_stride > 1:  # the history's true start (its first episode) if long enough
                first_fits = self.group_len[rows, 0] >= length
                residues[at_start & first_fits] = 0
        # One extra step in front of the window provides each step's previous action and reward.
        steps = starts[:, None] + np.arange(-1, length)[None, :]
        if self.episode_stride > 1:
            positions = self.group_start[rows, residues][:, None] + np.maximum(steps, 0)
            steps = np.where(steps >= 0, self.order[rows[:, None], positions], -1)
        return steps

    def sample(self) -> Batch:
        store = self.store
        rows = np.sort(self.rng.integers(0, store.num_instances, self.batch_size))
        # Every rank draws the global batch, then keeps its rows (same windows as one process).
        steps = self._window_steps(rows)[self.shard_rows]
        rows = rows[self.shard_rows]
        # Read only the window's entries (not whole rows) from the memory-mapped arrays.
        rows_2d, clipped = rows[:, None], np.maximum(steps, 0)
        taken = np.asarray(store.actions[rows_2d, clipped]).astype(np.int64)
        got = np.asarray(store.rewards[rows_2d, clipped], dtype=np.float32)
        taken[steps < 0] = -1
        got[steps < 0] = 0.0
        observations = prev_observations = prev_dones = None
        if store.observations is not None:
            window = np.asarray(store.observations[rows_2d, clipped])
            # Discrete observations are stored compactly; embedding look-ups want int64.
            window = window.astype(np.int64 if np.issubdtype(window.dtype, np.integer) else np.float32)
            window[steps < 0] = -1 if window.dtype == np.int64 else 0.0
            observations = torch.from_numpy(window[:, 1:]).to(self.device)
            prev_observations = torch.from_numpy(window[:, :-1]).to(self.device)
            ended = np.zeros(steps.shape, dtype=bool)
            if store.dones is not None:
                ended = np.asarray(store.dones[rows_2d, clipped]) & (steps >= 0)
            prev_dones = torch.from_numpy(ended[:, :-1]).to(self.device)
        return Batch(
            observations=observations,
            prev_observations=prev_observations,
            prev_dones=prev_dones,
            prev_actions=torch.from_numpy(taken[:, :-1]).to(self.device),
            prev_rewards=torch.from_numpy(got[:, :-1]).to(self.device),
            targets=torch.from_numpy(taken[:, 1:]).to(self.device),
            action_mask=torch.from_numpy(np.asarray(store.action_mask[rows])).to(self.device),
        )
