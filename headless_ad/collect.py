"""Collect learning histories of a source algorithm into a history store."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from headless_ad.histories import HistoryStoreError, load_store, write_store
from headless_ad.rollout import run_learner
from headless_ad.tasks import get_task


@dataclass
class CollectConfig:
    task: str = "bandit"
    """Environment family (bandit)."""
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


def collect_path(config: CollectConfig) -> Path:
    """Where `collect(config)` writes: --out, or runs/histories/<task>-<source>-n<N>-t<T>-s<seed>."""
    if config.out is not None:
        return config.out
    source = config.source or get_task(config.task).source_algorithm
    return Path("runs/histories") / f"{config.task}-{source}-n{config.num_instances}-t{config.horizon}-s{config.seed}"


def collect(config: CollectConfig) -> Path:
    """Collect (or reuse) the store for `config`; returns its path."""
    task = get_task(config.task)
    source = config.source or task.source_algorithm
    if config.num_instances < 1 or config.horizon < 1:
        raise ValueError("num_instances and horizon must be >= 1")
    suite = task.train_suite(config.num_instances, config.horizon, config.seed)
    env = task.make_env(suite)
    rng = np.random.default_rng(config.seed)
    learner = task.make_learner(source, env, suite, rng)  # validates the source name before any work
    path = collect_path(config)
    meta = {"task": task.name, "source": source, "suite": suite.describe(), "seed": config.seed}

    if path.exists() and not config.overwrite:
        try:
            existing = load_store(path)
        except HistoryStoreError as error:
            raise HistoryStoreError(f"{error}; pass --overwrite to collect it again") from None
        same = {key: existing.meta.get(key) for key in meta} == json.loads(json.dumps(meta))
        if not same:
            raise FileExistsError(f"{path} holds histories of another config; pass --overwrite or choose --out")
        print(f"reusing {path} ({existing.num_instances} histories of {existing.horizon} steps)")
        return path

    start = time.perf_counter()
    rollout = run_learner(env, learner, config.horizon, seed=config.seed)
    elapsed = time.perf_counter() - start
    arrays = {
        "actions": rollout.actions.astype(np.int16),
        "rewards": rollout.rewards,
        "action_mask": env.action_mask,
        "dones": rollout.dones,
    }
    if task.observation_kind == "discrete":
        arrays["observations"] = rollout.observations.astype(np.int16)
    elif task.observation_kind == "continuous":
        arrays["observations"] = rollout.observations.astype(np.float32)
    if rollout.regrets is not None:
        arrays["regrets"] = rollout.regrets
    write_store(path, meta, arrays, overwrite=config.overwrite)
    steps = config.num_instances * config.horizon
    summary = f", source {task.metric_name} {task.metric(rollout):.3f}"
    speed = f"{steps / elapsed:,.0f} env-steps/s"
    print(f"collected {config.num_instances} {source} histories in {elapsed:.1f}s ({speed}){summary} -> {path}")
    return path
