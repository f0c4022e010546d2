"""Collect learning histories of a source algorithm into a history store."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headless_ad.files import check_writable_folder
from headless_ad.histories import (
    HistoryStore,
    HistoryStoreError,
    check_store_destination,
    clean_store_leftovers,
    load_store,
    write_store,
)
from headless_ad.history_import import check_imported_store, is_imported_store
from headless_ad.locks import LockedError, exclusive_lock
from headless_ad.progress import progress_bar
from headless_ad.rollout import Rollout, concatenate, run_learner
from headless_ad.tasks import Suite, Task, get_task

COLLECTOR_VERSION = 2
"""Bumped whenever the same config would give different histories (2: Thompson Sampling draws
its Beta samples as float32 Gamma ratios), so a store of an older collector is never reused."""
CHUNK_INSTANCES = 2_500
"""Instances per independent rollout during collection. Fixed, so the histories are the same
whatever the number of threads."""


@dataclass
class CollectConfig:
    task: str = "bandit"
    """Environment family (bandit, darkroom, contextual_bandit, minigrid, minigrid_empty,
    minigrid_lavagap, minigrid_unlock), or a task of your own:
    package.module:Task, or a name from the headless_ad.tasks entry-point group."""
    out: Path | None = None
    """Store directory; default runs/histories/<task>-<source>-n<instances>-t<horizon>-s<seed>."""
    num_instances: int = 10_000
    """Training instances, each one learning history."""
    horizon: int = 300
    """Steps per history."""
    source: str | None = None
    """Source algorithm; default: the task's (thompson for bandits)."""
    seed: int = 0
    """Seeds the instances (arm counts, means) and the learner's and env's randomness."""
    overwrite: bool = False
    """Collect again even if a complete store with this config exists."""
    instances: tuple[int, int] | None = None
    """Collect only instances [start, stop) of the set, to split a collection over processes or
    machines; `python -m headless_ad merge` joins the parts into the store of the whole set."""
    train_suite: str = ""
    """The task's own changes to its training suite, as key=value pairs (bandits: arms=10 for one arm
    count; darkroom: min_actions=25 for random subsets of at least 25 actions); empty: the task's
    default training suite. An unknown key fails with the task's list of keys."""
    threads: int = 0
    """Threads running chunks of 2,500 instances side by side; 0 = every core this process may
    use. The histories do not depend on it."""


def collect_path(config: CollectConfig) -> Path:
    """Where `collect(config)` writes: --out, or runs/histories/<task>-<source>-n<N>-t<T>-s<seed>."""
    if config.out is not None:
        return config.out
    task = get_task(config.task)
    source = config.source or task.source_algorithm
    name = f"{task.name}-{source}-n{config.num_instances}-t{config.horizon}-s{config.seed}"
    if config.train_suite:
        name += "-" + config.train_suite.replace("=", "").replace(",", "-")
    if config.instances is not None:
        name += f"-part{config.instances[0]}-{config.instances[1]}"
    return Path("runs/histories") / name


def store_meta(config: CollectConfig) -> dict[str, Any]:
    """What identifies a store: two configs with equal meta give interchangeable histories."""
    task = get_task(config.task)
    suite = task.train_suite(config.num_instances, config.horizon, config.seed, config.train_suite)
    meta = {"task": task.name, "source": config.source or task.source_algorithm, "suite": suite.describe()}
    if config.task != task.name:  # a plug-in: the spec that finds it again
        meta["task_spec"] = config.task
    meta["seed"] = config.seed
    meta["collector_version"] = COLLECTOR_VERSION
    if config.instances is not None:
        meta["instances"] = list(config.instances)
    return json.loads(json.dumps(meta))


def collect(config: CollectConfig) -> Path:
    """Collect (or reuse) the store for `config`; returns its path."""
    task = get_task(config.task)
    source = config.source or task.source_algorithm
    if config.num_instances < 1 or config.horizon < 1:
        raise ValueError("--num-instances and --horizon must be >= 1")
    if config.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {config.threads}")
    rows, seed = None, config.seed
    if config.instances is not None:
        first, stop = config.instances
        if not 0 <= first < stop <= config.num_instances:
            raise ValueError(f"--instances {config.instances} is not a range within [0, {config.num_instances})")
        # Instance parameters depend only on (seed, index); the part's noise gets its own stream.
        rows, seed = slice(first, stop), int(np.random.SeedSequence([config.seed, first, stop]).generate_state(1)[0])
    path = collect_path(config)
    meta = store_meta(config)
    if is_imported_store(path):  # histories nobody can collect again: used as they are, never replaced
        check_imported_store(load_store(path), task, config.horizon)
        return path
    tidy_store(path)
    if check_store_destination(path) == "store" and not config.overwrite:
        return reuse_store(path, meta)
    check_writable_folder(path.parent, "history stores")
    with exclusive_lock(path, "history store"):
        if check_store_destination(path) == "store" and not config.overwrite:
            return reuse_store(path, meta)  # another writer finished it just before
        suite = task.train_suite(config.num_instances, config.horizon, config.seed, config.train_suite)
        threads = config.threads or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
        start = time.perf_counter()
        rows = rows or slice(0, config.num_instances)
        with progress_bar((rows.stop - rows.start) * config.horizon, f"collecting {source}", unit="env-step") as bar:
            rollout, action_mask = run_source(task, suite, source, rows, seed, threads, bar.update)
        elapsed = time.perf_counter() - start
        arrays = {
            "actions": rollout.actions.astype(np.int16),
            "rewards": rollout.rewards,
            "action_mask": action_mask,
            "dones": rollout.dones,
        }
        if task.observation_kind == "discrete":
            arrays["observations"] = rollout.observations.astype(np.int16)
        elif task.observation_kind == "continuous":
            arrays["observations"] = rollout.observations.astype(np.float32)
        if rollout.regrets is not None:
            arrays["regrets"] = rollout.regrets
        if rollout.policy_actions is not None:
            arrays["policy_actions"] = rollout.policy_actions.astype(np.int16)
            arrays["policy_spread"] = rollout.policy_spread
        if rollout.policy_probabilities is not None:
            arrays["policy_probabilities"] = rollout.policy_probabilities
        write_store(path, meta, arrays, overwrite=config.overwrite)
        num_histories = len(action_mask)
        steps = num_histories * config.horizon
        summary = f", source {task.metric_name} {task.metric(rollout):.3f}"
        speed = f"{steps / elapsed:,.0f} env-steps/s"
        print(f"collected {num_histories} {source} histories in {elapsed:.1f}s ({speed}){summary} -> {path}")
        return path


def tidy_store(path: Path) -> None:
    """Undo what killed writers of the store at `path` left behind, unless a live writer holds its
    lock (on a shared file system its temporaries may belong to a process on another machine), or
    the folder cannot be written (a read-only store is still reused)."""
    with contextlib.suppress(LockedError, OSError), exclusive_lock(path, "history store"):
        for line in clean_store_leftovers(path):
            print(line)


def reuse_store(path: Path, meta: dict[str, Any]) -> Path:
    """The complete store at `path`, if it holds the histories `meta` describes; else one line why not."""
    try:
        existing = load_store(path)
    except HistoryStoreError as error:
        raise HistoryStoreError(f"{error}; pass --overwrite to collect it again") from None
    if existing.meta.get("collector_version") != COLLECTOR_VERSION:
        raise FileExistsError(
            f"{path} was collected by collector version {existing.meta.get('collector_version', 1)}, "
            f"this is version {COLLECTOR_VERSION} (its histories differ); pass --overwrite to collect it again"
        )
    check_store_matches(existing, meta)
    print(f"reusing {path} ({existing.num_instances} histories of {existing.horizon} steps)")
    return path


def open_store(config: CollectConfig) -> HistoryStore:
    """The store `config` asks for, checked to hold those histories (imported histories: checked
    to fit the task and horizon, as nobody can collect them again)."""
    path = collect_path(config)
    store = load_store(path)
    if is_imported_store(path):
        check_imported_store(store, get_task(config.task), config.horizon)
    else:
        check_store_matches(store, store_meta(config))
    return store


def check_store_matches(store: HistoryStore, meta: dict[str, Any]) -> None:
    """Refuse a store whose meta.json differs from `meta` (`store_meta` of the config asking for it)."""
    differing = [key for key in meta if store.meta.get(key) != meta[key]]
    if differing:
        raise FileExistsError(
            f"{store.path} holds histories of another config ({', '.join(differing)} differ); "
            "pass --overwrite or choose --out"
        )


def merge(parts: list[Path], out: Path, overwrite: bool = False) -> Path:
    """Join stores collected with `instances` ranges that tile [0, N) into the store of all N."""
    out = Path(out)
    if check_store_destination(out) == "store" and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it")
    tidy_store(out)
    check_writable_folder(out.parent, "history stores")
    with exclusive_lock(out, "history store"):
        return _merge(parts, out, overwrite)


def _merge(parts: list[Path], out: Path, overwrite: bool) -> Path:
    stores = sorted((load_store(part) for part in parts), key=lambda store: store.meta.get("instances", [0])[0])
    if not stores:
        raise ValueError("merge needs at least one part")
    first = stores[0].meta
    expected = 0
    for store in stores:
        if "instances" not in store.meta:
            raise HistoryStoreError(f"{store.path}: not a part (collected without --instances)")
        start, stop = store.meta["instances"]
        if start != expected:
            raise HistoryStoreError(
                f"{store.path}: covers [{start}, {stop}) but the next part must start at {expected}"
            )
        for key in ("task", "task_spec", "source", "suite", "seed", "collector_version"):
            if store.meta.get(key) != first.get(key):
                raise HistoryStoreError(f"{store.path}: {key} differs from {stores[0].path}")
        expected = stop
    if expected != first["suite"]["num_instances"]:
        raise HistoryStoreError(f"the parts cover [0, {expected}) of {first['suite']['num_instances']} instances")
    names = sorted(set(first["arrays"]))
    widths = {store.max_actions for store in stores}
    arrays = {}
    for name in names:
        pieces = [np.asarray(getattr(store, name)) for store in stores]
        if name in ("action_mask", "policy_probabilities"):  # a part may not reach the widest action set
            pieces = [pad_actions(piece, max(widths)) for piece in pieces]
        arrays[name] = np.concatenate(pieces)
    meta = {key: first.get(key) for key in ("task", "source", "suite", "seed", "collector_version")}
    if "task_spec" in first:
        meta["task_spec"] = first["task_spec"]
    meta["merged_from"] = [str(store.path) for store in stores]
    write_store(out, meta, arrays, overwrite=overwrite)
    print(f"merged {len(stores)} parts ({expected} histories) -> {out}")
    return out


def run_source(
    task: Task,
    suite: Suite,
    source: str,
    rows: slice,
    seed: int,
    threads: int,
    on_env_steps: Callable[[int], object] | None = None,
) -> tuple[Rollout, np.ndarray]:
    """The source algorithm's learning histories on instances `rows` of `suite`, and their action
    mask. The instances run in independent chunks of CHUNK_INSTANCES, several at once on threads
    (numpy releases the GIL inside its array loops, so chunks overlap on separate cores). Chunk
    k's environment noise and learner draw from their own streams spawned from (seed, k).
    `on_env_steps(n)` is told of every n env steps done (progress)."""
    starts = range(rows.start, rows.stop, CHUNK_INSTANCES)

    def run_chunk(index: int, first: int) -> tuple[Rollout, np.ndarray]:
        env_stream, learner_stream = np.random.SeedSequence([seed, index]).spawn(2)
        env = task.make_env(suite, slice(first, min(first + CHUNK_INSTANCES, rows.stop)))
        # SFC64: the fastest of numpy's bit generators (Beta draws about 12% faster than PCG64).
        learner = task.make_learner(source, env, suite, np.random.Generator(np.random.SFC64(learner_stream)))
        on_step = None if on_env_steps is None else lambda: on_env_steps(env.num_envs)
        rollout = run_learner(env, learner, suite.horizon, seed=int(env_stream.generate_state(1)[0]), on_step=on_step)
        return rollout, env.action_mask

    with ThreadPoolExecutor(max(1, min(threads, len(starts)))) as pool:
        chunks = list(pool.map(run_chunk, range(len(starts)), starts))
    # Chunks may differ in width (their widest action list): pad the masks to the widest.
    width = max(mask.shape[1] for _, mask in chunks)
    for rollout, _ in chunks:
        if rollout.policy_probabilities is not None:
            rollout.policy_probabilities = pad_actions(rollout.policy_probabilities, width)
    return concatenate([rollout for rollout, _ in chunks]), np.concatenate([pad_actions(m, width) for _, m in chunks])


def pad_actions(array: np.ndarray, width: int) -> np.ndarray:
    """Zeros (not offered, probability 0) appended along the last axis, the actions, up to `width`."""
    return np.pad(array, [(0, 0)] * (array.ndim - 1) + [(0, width - array.shape[-1])])
