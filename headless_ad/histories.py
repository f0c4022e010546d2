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
    policy_actions.npy  int16   (N, T)   with policy_spread, the source's action distribution at
    policy_spread.npy   float16 (N, T)   step t where it is known: weight 1 - spread on the action
                                         policy_actions names, spread shared evenly by the
                                         instance's actions (epsilon-greedy Q-learning: its
                                         greedy action and epsilon)
    policy_probabilities.npy  float16 (N, T, A)  or the whole distribution: the probability of
                                         each action at step t, 0 where the instance does not
                                         offer it (Thompson Sampling, estimated by sampling)

The directory is assembled under a temporary name and renamed into place only when complete,
so an interrupted collection never leaves a store that loads; an overwrite exchanges the new
store with the old one atomically. A folder holding anything else is never replaced. Arrays are
memory-mapped on load, after their dtypes, shapes and values are checked.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headless_ad.files import remove_stale_temporaries, stale_temporaries, temporary_path

FORMAT_VERSION = 1
_REQUIRED = ("actions", "rewards", "action_mask")
_ARRAYS = (
    "actions", "rewards", "observations", "action_mask", "regrets", "dones",
    "policy_actions", "policy_spread", "policy_probabilities",
)  # fmt: skip
STORE_FILES = frozenset({"meta.json", *(f"{name}.npy" for name in _ARRAYS)})
"""The only files a store folder holds; a folder with anything else is not a store."""


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
    policy_actions: np.ndarray | None = None
    policy_spread: np.ndarray | None = None
    policy_probabilities: np.ndarray | None = None

    @property
    def records_policy(self) -> bool:
        """Whether the store holds its source's action distribution (for --policy-targets)."""
        return self.policy_actions is not None or self.policy_probabilities is not None

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
    """Write a complete store atomically: assembled (and flushed to disk) under a temporary name,
    then renamed into place. With `overwrite` an existing store is swapped for the new one in one
    atomic step, so a kill at any moment leaves the old store or the new one, never neither.
    Whatever is at `path` and is not a history store is never replaced."""
    path = Path(path)
    missing = [name for name in _REQUIRED if name not in arrays]
    if missing:
        raise ValueError(f"a history store needs arrays {missing}")
    if check_store_destination(path) == "store" and not overwrite:
        raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)  # `.<name>.tmp-<pid>`: recognisably stale once this process is gone
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for name, array in arrays.items():
            with open(tmp / f"{name}.npy", "wb") as handle:
                np.save(handle, array)
                _flush(handle)
        meta = {**meta, "format_version": FORMAT_VERSION, "arrays": sorted(arrays)}
        # meta.json is written last: a directory without it was never finished.
        with open(tmp / "meta.json", "w") as handle:
            handle.write(json.dumps(meta, indent=2, sort_keys=True))
            _flush(handle)
        _install(tmp, path, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _flush(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def check_store_destination(path: Path) -> str:
    """What is at `path`, for a store writer: "absent", "empty" (an empty folder) or "store" (a
    folder of store files only, complete or not). Anything else (a file, a run directory, a folder
    of other things) raises: a store writer never replaces it, not even with --overwrite."""
    path = Path(path)
    if not path.exists():
        return "absent"
    if not path.is_dir():
        raise HistoryStoreError(f"{path}: a file, not a history store; it is left as it is (choose another --out)")
    entries = sorted(entry.name for entry in path.iterdir())
    foreign = [name for name in entries if name not in STORE_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise HistoryStoreError(
            f"{path}: not a history store (it holds {shown}); it is left as it is (choose another --out)"
        )
    return "store" if entries else "empty"


def _install(new: Path, path: Path, overwrite: bool) -> None:
    """Move the complete store `new` to `path`; replace a store there only if `overwrite`."""
    state = check_store_destination(path)  # again: something may have appeared since the start
    if state in ("absent", "empty"):
        os.rename(new, path)  # (an empty folder is replaced; a non-empty one makes this fail)
        return
    if not overwrite:
        raise FileExistsError(f"{path} appeared while this store was written; it is left as it is")
    if _exchange(new, path):  # one atomic step: `new` now holds the old store
        old = new
    else:  # no atomic exchange here: the old store steps aside; `recover_interrupted_swap` undoes a kill
        old = aside_path(path)
        os.rename(path, old)
        os.rename(new, path)
    shutil.rmtree(old)


def aside_path(path: Path) -> Path:
    """Where an overwritten store waits while its replacement moves in (without atomic exchange)."""
    return path.with_name(f".{path.name}.old-{os.getpid()}")


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_cwd, rename_exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def clean_store_leftovers(path: Path) -> list[str]:
    """Undo what killed writers of the store at `path` left: a store set aside by an interrupted
    overwrite goes back in place if nothing replaced it; stale temporaries are removed. Only what
    processes no longer alive left is touched; hold the store's lock all the same (`collect.tidy_store`),
    since a pid names a process on this machine only. Returns a line per action."""
    path = Path(path)
    done = []
    for aside in stale_temporaries(path.parent, path.name, kinds=("old",)):
        if not path.exists():
            with contextlib.suppress(FileNotFoundError):  # another process restored it first
                os.rename(aside, path)
                done.append(f"restored {path} from {aside.name}, set aside by an interrupted overwrite")
        else:
            shutil.rmtree(aside, ignore_errors=True)
            done.append(f"removed {aside}, left by an interrupted overwrite")
    done += [f"removed {entry}, left by a killed writer" for entry in remove_stale_temporaries(path.parent, path.name)]
    return done


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
    for name, array in arrays.items():
        kinds, dims = _LAYOUT[name]
        if array.dtype.kind not in kinds or array.ndim not in dims:
            raise HistoryStoreError(
                f"{path / (name + '.npy')}: a {array.ndim}-d {array.dtype} array; a store holds "
                f"{' or '.join(f'{d}-d' for d in dims)} arrays of {_KIND_NAMES[kinds]} there"
            )
    num, horizon = arrays["actions"].shape
    if ("policy_actions" in arrays) != ("policy_spread" in arrays):
        raise HistoryStoreError(f"{path}: policy_actions and policy_spread come together; meta.json lists one")
    for name in set(_ARRAYS) - {"actions", "action_mask"}:  # every per-step array
        if name in arrays and arrays[name].shape[:2] != (num, horizon):
            raise HistoryStoreError(
                f"{path / (name + '.npy')}: shape {arrays[name].shape} does not match actions {(num, horizon)}"
            )
    mask = arrays["action_mask"]
    if mask.shape[0] != num:
        raise HistoryStoreError(f"{path / 'action_mask.npy'}: {mask.shape[0]} rows for {num} histories")
    if "policy_probabilities" in arrays and arrays["policy_probabilities"].shape[2] != mask.shape[1]:
        raise HistoryStoreError(
            f"{path / 'policy_probabilities.npy'}: {arrays['policy_probabilities'].shape[2]} actions per step, "
            f"action_mask has {mask.shape[1]}"
        )
    _check_values(path, arrays)
    return HistoryStore(path=path, meta=meta, **arrays)


_LAYOUT = {
    "actions": ("iu", (2,)),
    "rewards": ("f", (2,)),
    "observations": ("iuf", (2, 3)),
    "action_mask": ("b", (2,)),
    "regrets": ("f", (2,)),
    "dones": ("b", (2,)),
    "policy_actions": ("iu", (2,)),
    "policy_spread": ("f", (2,)),
    "policy_probabilities": ("f", (3,)),
}
_KIND_NAMES = {"iu": "integers", "f": "floats", "iuf": "integers or floats", "b": "booleans"}
_CHECK_ROWS = 4_096


def _check_values(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Every action taken is one its instance offers, rewards and regrets are finite, discrete
    observations are non-negative: a garbage store fails here, naming its file, rather than deep
    inside training. Reads the arrays in blocks of rows, so memory stays small."""
    mask = arrays["action_mask"]
    for start in range(0, mask.shape[0], _CHECK_ROWS):
        rows = slice(start, start + _CHECK_ROWS)
        offered = np.asarray(mask[rows])
        for name in ("actions", "policy_actions"):
            if name not in arrays:
                continue
            taken = np.asarray(arrays[name][rows]).astype(np.int64)
            inside = (taken >= 0) & (taken < offered.shape[1])
            allowed = inside & np.take_along_axis(offered, np.clip(taken, 0, offered.shape[1] - 1), axis=1)
            if not allowed.all():
                row, step = np.argwhere(~allowed)[0]
                raise HistoryStoreError(
                    f"{path / (name + '.npy')}: history {start + row} "
                    f"{'takes' if name == 'actions' else 'names'} action {taken[row, step]} at step {step}, "
                    "which its action_mask does not offer"
                )
        if "policy_spread" in arrays:
            spread = np.asarray(arrays["policy_spread"][rows])
            if not ((spread >= 0) & (spread <= 1)).all():
                row = start + np.argwhere(~((spread >= 0) & (spread <= 1)))[0][0]
                raise HistoryStoreError(f"{path / 'policy_spread.npy'}: values outside [0, 1] in history {row}")
        if "policy_probabilities" in arrays:
            probabilities = np.asarray(arrays["policy_probabilities"][rows], dtype=np.float32)
            valid = (probabilities >= 0) & (probabilities <= 1) & (offered[:, None, :] | (probabilities == 0))
            if not valid.all():
                row = start + np.argwhere(~valid)[0][0]
                raise HistoryStoreError(
                    f"{path / 'policy_probabilities.npy'}: values outside [0, 1], or on actions the "
                    f"action_mask does not offer, in history {row}"
                )
        for name in ("rewards", "regrets", "observations"):
            if name not in arrays:
                continue
            values = np.asarray(arrays[name][rows])
            bad = ~np.isfinite(values) if values.dtype.kind == "f" else values < 0
            if bad.any():
                what = "non-finite" if values.dtype.kind == "f" else "negative"
                row = start + np.argwhere(bad)[0][0]
                raise HistoryStoreError(f"{path / (name + '.npy')}: {what} values in history {row}")


@dataclass
class Batch:
    """A batch of history windows, as tensors."""

    observations: torch.Tensor | None  # (B, L) or (B, L, d)
    prev_observations: torch.Tensor | None  # like observations; -1 / zeros where there is none
    prev_dones: torch.Tensor | None  # (B, L) bool: the previous step ended an episode
    prev_actions: torch.Tensor  # (B, L) int64, -1 where there is no previous action
    prev_rewards: torch.Tensor  # (B, L) float32
    targets: torch.Tensor  # (B, L) int64: the action the source took (policy targets: the mode)
    action_mask: torch.Tensor  # (B, A) bool
    target_spread: torch.Tensor | None = None  # (B, L) float32: policy targets' uniform share
    target_probabilities: torch.Tensor | None = None  # (B, L, A) float32: policy targets as a distribution


class WindowSampler:
    """Samples (instance, window start) uniformly and cuts `seq_len`-step windows out of a store.

    `start_share`: the share of windows cut at the very start of a history instead (evaluation
    begins with an empty context, which uniform starts in long histories almost never show).

    `episode_stride=k` (episodic tasks): a window holds every k-th episode of a history (those
    with index = r mod k, for a random r), so it shows k times the learning progress of a
    contiguous window; the kept episodes follow each other exactly as episodes of one history do.

    `policy_targets`: the targets are the source's recorded action distribution (the mode action
    and the uniform share, `target_spread`, or every action's probability, `target_probabilities`)
    rather than the action it took.

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
        policy_targets: bool = False,
    ) -> None:
        if policy_targets and not store.records_policy:
            raise ValueError(
                f"--policy-targets: {store.path} does not record its source's action distribution "
                "(sources that tell it, such as q_learning and thompson_policy, record it; a store "
                "collected before they did needs --collect.overwrite)"
            )
        self.policy_targets = policy_targets
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
        targets, target_spread, target_probabilities = taken[:, 1:], None, None
        if self.policy_targets and store.policy_probabilities is not None:
            probabilities = np.asarray(store.policy_probabilities[rows_2d, clipped[:, 1:]], dtype=np.float32)
            target_probabilities = torch.from_numpy(probabilities).to(self.device)
        elif self.policy_targets:
            targets = np.asarray(store.policy_actions[rows_2d, clipped[:, 1:]]).astype(np.int64)
            spread = np.asarray(store.policy_spread[rows_2d, clipped[:, 1:]], dtype=np.float32)
            target_spread = torch.from_numpy(spread).to(self.device)
        return Batch(
            observations=observations,
            prev_observations=prev_observations,
            prev_dones=prev_dones,
            prev_actions=torch.from_numpy(taken[:, :-1]).to(self.device),
            prev_rewards=torch.from_numpy(got[:, :-1]).to(self.device),
            targets=torch.from_numpy(targets).to(self.device),
            action_mask=torch.from_numpy(np.asarray(store.action_mask[rows])).to(self.device),
            target_spread=target_spread,
            target_probabilities=target_probabilities,
        )
