"""Histories a user already has (arrays of actions, rewards, observations and action sets per
instance) into a history store, so one can distil one's own source algorithm.

Train on the store with `train ... --collect.out <store> --collect.horizon <its steps>`: `collect`
reuses an imported store as it is (it cannot collect it again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headless_ad.histories import HistoryStore, HistoryStoreError, write_store

ARRAY_NAMES = ("actions", "rewards", "action_mask", "action_sets", "observations", "dones")


@dataclass
class ImportConfig:
    arrays: Path
    """An .npz file with `actions` (N, T) integers (the action each instance took at each step,
    an index of its env's action space), `rewards` (N, T), and either `action_mask` (N, A) bool
    (which actions instance i offers) or `action_sets` (N, K) integers (the actions instance i
    offers, padded with -1); optionally `observations` ((N, T) integers for a task with discrete
    observations, (N, T, d) for continuous ones; the observation each action was taken on) and
    `dones` (N, T) bool (the step ended an episode)."""
    out: Path
    """The history store to write."""
    task: str
    """The task the histories belong to (its observations and evaluation suites): a name or package.module:Task."""
    overwrite: bool = False
    """Replace an existing store at --out."""


def import_arrays(config: ImportConfig) -> Path:
    """`import_histories` from the arrays of an .npz file."""
    if not Path(config.arrays).is_file():
        raise FileNotFoundError(f"{config.arrays}: no such file")
    try:
        with np.load(config.arrays) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (ValueError, OSError) as error:
        raise ValueError(f"{config.arrays}: not a readable .npz file ({error})") from None
    unknown = sorted(set(arrays) - set(ARRAY_NAMES))
    if unknown:
        raise ValueError(f"{config.arrays}: unknown arrays {unknown}; known: {', '.join(ARRAY_NAMES)}")
    for name in ("actions", "rewards"):
        if name not in arrays:
            raise ValueError(f"{config.arrays}: no array {name!r}")
    return import_histories(config.out, config.task, overwrite=config.overwrite, **arrays)


def import_histories(
    out: Path | str,
    task: str,
    actions: np.ndarray,
    rewards: np.ndarray,
    action_mask: np.ndarray | None = None,
    action_sets: np.ndarray | list[list[int]] | None = None,
    observations: np.ndarray | None = None,
    dones: np.ndarray | None = None,
    overwrite: bool = False,
) -> Path:
    """Validate the arrays (see `ImportConfig.arrays`) and write them as a history store at `out`.
    `action_sets` may also be a list of per-instance lists. Bad input raises ValueError naming
    the array and the first bad entry, before anything is written."""
    from headless_ad.tasks import get_task

    found = get_task(task)
    actions = np.asarray(actions)
    if actions.ndim != 2 or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"actions must be an (instances, steps) integer array, got {actions.dtype} {actions.shape}")
    num, horizon = actions.shape
    if num < 1 or horizon < 1:
        raise ValueError(f"actions must hold at least one step of one instance, got shape {actions.shape}")
    rewards = np.asarray(rewards, dtype=np.float32)
    if rewards.shape != actions.shape:
        raise ValueError(f"rewards has shape {rewards.shape}, actions {actions.shape}: they must match")
    if not np.isfinite(rewards).all():
        raise ValueError(f"rewards{list(np.argwhere(~np.isfinite(rewards))[0])} is not finite")
    mask = action_mask_of(num, action_mask, action_sets)
    check_actions_in_sets(actions, mask)
    arrays: dict[str, np.ndarray] = {"actions": actions.astype(np.int16), "rewards": rewards, "action_mask": mask}
    if dones is not None:
        dones = np.asarray(dones)
        if dones.shape != actions.shape:
            raise ValueError(f"dones has shape {dones.shape}, actions {actions.shape}: they must match")
        arrays["dones"] = dones.astype(bool)
    else:
        arrays["dones"] = np.zeros(actions.shape, dtype=bool)
    size = found.observation_size(found.train_suite(num, horizon, 0))
    observed = checked_observations(observations, found.observation_kind, size, actions.shape, task)
    if observed is not None:
        arrays["observations"] = observed
    meta: dict[str, Any] = {
        "task": found.name,
        "source": "imported",
        "imported": True,
        "suite": {"num_instances": num, "horizon": horizon},
    }
    if task != found.name:
        meta["task_spec"] = task
    write_store(Path(out), json.loads(json.dumps(meta)), arrays, overwrite=overwrite)
    print(f"imported {num} histories of {horizon} steps -> {out}")
    return Path(out)


def action_mask_of(num: int, action_mask: Any, action_sets: Any) -> np.ndarray:
    """The (N, A) availability mask, from a mask or from per-instance action lists (-1 padding)."""
    if (action_mask is None) == (action_sets is None):
        raise ValueError("give exactly one of action_mask (N, A) bool and action_sets (N, K) integers")
    if action_mask is not None:
        mask = np.asarray(action_mask)
        if mask.dtype != bool or mask.ndim != 2 or mask.shape[0] != num:
            raise ValueError(f"action_mask must be an ({num}, actions) bool array, got {mask.dtype} {mask.shape}")
    else:
        if isinstance(action_sets, np.ndarray):
            table = action_sets
        else:
            rows = [np.asarray(row, dtype=np.int64).ravel() for row in action_sets]
            table = np.full((len(rows), max((row.size for row in rows), default=0)), -1, dtype=np.int64)
            for i, row in enumerate(rows):
                table[i, : row.size] = row
        if table.ndim != 2 or table.shape[0] != num or not np.issubdtype(table.dtype, np.integer):
            raise ValueError(f"action_sets must be a ({num}, K) integer array padded with -1, got {table.shape}")
        if (table < -1).any():
            raise ValueError(f"action_sets{list(np.argwhere(table < -1)[0])} is negative (only -1 pads)")
        mask = np.zeros((num, int(table.max()) + 1), dtype=bool)
        rows_2d = np.broadcast_to(np.arange(num)[:, None], table.shape)
        mask[rows_2d[table >= 0], table[table >= 0]] = True
    empty = ~mask.any(axis=1)
    if empty.any():
        raise ValueError(f"instance {int(np.flatnonzero(empty)[0])} offers no action")
    return mask


def check_actions_in_sets(actions: np.ndarray, mask: np.ndarray) -> None:
    width = mask.shape[1]
    if width > np.iinfo(np.int16).max:
        raise ValueError(f"at most {np.iinfo(np.int16).max} actions per instance, got {width}")
    inside = (actions >= 0) & (actions < width)
    inside[inside] = mask[np.nonzero(inside)[0], actions[inside]]
    if not inside.all():
        i, t = np.argwhere(~inside)[0]
        raise ValueError(f"actions[{i}, {t}] = {actions[i, t]} is not in instance {i}'s action set")


def checked_observations(
    observations: np.ndarray | None, kind: str, size: int, shape: tuple[int, int], task: str
) -> np.ndarray | None:
    """The observations as the store keeps them, after checking them against the task's kind and size."""
    if kind == "none":
        if observations is not None:
            raise ValueError(f"task {task!r} has no observations, but observations were given")
        return None
    if observations is None:
        raise ValueError(f"task {task!r} has {kind} observations: give observations")
    observations = np.asarray(observations)
    if kind == "discrete":
        if observations.shape != shape or not np.issubdtype(observations.dtype, np.integer):
            raise ValueError(
                f"observations must be a {shape} integer array, got {observations.dtype} {observations.shape}"
            )
        outside = (observations < 0) | (observations >= size)
        if outside.any():
            i, t = np.argwhere(outside)[0]
            raise ValueError(f"observations[{i}, {t}] = {observations[i, t]} is outside [0, {size}) (task {task!r})")
        return observations.astype(np.int16)
    if observations.shape != (*shape, size):
        raise ValueError(f"observations must have shape {(*shape, size)}, got {observations.shape}")
    if not np.isfinite(observations).all():
        raise ValueError("observations hold values that are not finite")
    return observations.astype(np.float32)


def is_imported_store(path: Path) -> bool:
    """Whether `path` holds a store written by `import_histories` (its meta.json says so)."""
    try:
        return bool(json.loads((Path(path) / "meta.json").read_text()).get("imported"))
    except (OSError, ValueError, AttributeError):
        return False


def check_imported_store(store: HistoryStore, task: Any, horizon: int) -> None:
    """An imported store trains the task it was imported for, with the horizon it has."""
    if store.meta.get("task") != task.name:
        raise HistoryStoreError(f"{store.path}: histories of task {store.meta.get('task')!r}, not {task.name!r}")
    if store.horizon != horizon:
        raise ValueError(
            f"{store.path}: imported histories are {store.horizon} steps long; pass --collect.horizon {store.horizon}"
        )
    print(f"using imported histories {store.path} ({store.num_instances} histories of {store.horizon} steps)")
