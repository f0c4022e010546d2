"""Evaluation results a report can trust: every agent's metric per instance and its curve per
instance, saved as runs/<run>/evaluations/<name>/results.json + curves.npz.

The folder's name says what was evaluated (checkpoint step, suites, seed, instances, horizon,
selection, temperature), so a second evaluation with other settings lands beside the first, and one
with the same settings is refused unless asked to replace it. Both files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from headless_ad.files import atomic_output, atomic_write_json
from headless_ad.rollout import Rollout
from headless_ad.tasks.base import Task

RESULTS_VERSION = 1
RESULTS_FILE = "results.json"
CURVES_FILE = "curves.npz"


def instance_metrics(task: Task, rollout: Rollout) -> np.ndarray | None:
    """The task's metric per instance, or None for a task that does not report one."""
    metrics = task.instance_metrics(rollout)
    return None if metrics is None else np.asarray(metrics, dtype=np.float64)


def instance_curves(task: Task, rollout: Rollout) -> tuple[np.ndarray, np.ndarray] | None:
    return task.instance_curves(rollout)


def _slug(text: str, limit: int = 80) -> str:
    """A folder-name-safe form of `text`; long ones keep a readable head and a hash of the whole."""
    slug = re.sub(r"[^A-Za-z0-9._+=-]+", "-", text).strip("-")
    if len(slug) > limit:
        slug = f"{slug[: limit - 9]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return slug


def checkpoint_prefix(checkpoint: Path) -> str:
    """Evaluation folders of checkpoint.pt have no prefix; those of any other file (best.pt) are
    named apart by its file name, whatever step they share with checkpoint.pt's."""
    return "" if Path(checkpoint).name == "checkpoint.pt" else f"{_slug(Path(checkpoint).name)}-"


def temperature_slug(temperature: str) -> str:
    """`0.8 -> 0.3 over 200 episodes` as `0.8to0.3over200ep` (`steps`: `st`; `, min-p 0.2`: `minp0.2`)."""
    for long, short in (
        (" -> ", "to"),
        (" over ", "over"),
        (" episodes", "ep"),
        (" steps", "st"),
        (", min-p ", "minp"),
    ):
        temperature = temperature.replace(long, short)
    return temperature


def evaluation_name(
    step: int,
    suites: tuple[str, ...] | list[str],
    seed: int,
    num_instances: int,
    horizon: int,
    selection: tuple[str, ...] | list[str],
    temperature: str,
    prefix: str = "",
) -> str:
    """E.g. `step7000_seed1_n100_h300_sample_t0.8_all_new+num_50`."""
    parts = [
        f"{prefix}step{step}",
        f"seed{seed}",
        f"n{num_instances}",
        f"h{horizon}",
        "+".join(selection),
        "t" + _slug(temperature_slug(temperature)),
        _slug("+".join(suites)),
    ]
    return "_".join(parts)


def save_evaluation(
    directory: Path,
    task: Task,
    results: list[Any],
    description: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write `results` (evaluate.SuiteResult) to `directory`/results.json and curves.npz."""
    directory = Path(directory)
    if (directory / RESULTS_FILE).exists() and not overwrite:
        raise FileExistsError(f"{directory} holds an evaluation with these settings; pass --overwrite to replace it")
    directory.mkdir(parents=True, exist_ok=True)
    curves: dict[str, np.ndarray] = {}

    def add_curve(curve: tuple[np.ndarray, np.ndarray]) -> str:
        """Store (x, (N, L)) in curves.npz; returns the key results.json names it by."""
        key = f"c{len(curves) // 2}"
        curves[f"{key}_x"], curves[f"{key}_y"] = np.asarray(curve[0]), np.asarray(curve[1], np.float32)
        return key

    suites: dict[str, Any] = {}
    for result in results:
        agents: dict[str, Any] = {}
        for agent, rollout in result.rollouts.items():
            per_instance = instance_metrics(task, rollout)
            curve = instance_curves(task, rollout)
            agents[agent] = {
                "metric": result.metric(agent),
                "per_instance": None if per_instance is None else [_finite_or_none(v) for v in per_instance],
                "curve": None if curve is None else add_curve(curve),
                "extra": result.extra_metrics(agent),
                "extra_curves": {
                    name: add_curve(extra) for name, extra in task.extra_curves(result.spec, rollout).items()
                },
            }
        suites[result.suite] = {
            "spec": result.spec.describe(),
            "agents": agents,
            "not_applicable": dict(result.not_applicable),
        }
    document = {
        "version": RESULTS_VERSION,
        "task": task.name,
        "metric_name": task.metric_name,
        "source_algorithm": task.source_algorithm,
        "curve_labels": list(task.curve_labels),
        **description,
        "suites": suites,
    }
    with atomic_output(directory / CURVES_FILE) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **curves)
    # results.json last: its presence marks a complete evaluation.
    atomic_write_json(directory / RESULTS_FILE, json.loads(json.dumps(document, default=str)))
    return directory


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def load_evaluation(directory: Path) -> dict[str, Any]:
    """results.json as a dict, with `curves` (key -> (x, (N, L))) read from curves.npz."""
    directory = Path(directory)
    try:
        document = json.loads((directory / RESULTS_FILE).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{directory / RESULTS_FILE}: unreadable ({error})") from None
    if document.get("version") != RESULTS_VERSION:
        raise ValueError(f"{directory / RESULTS_FILE}: not a results file of version {RESULTS_VERSION}")
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if (directory / CURVES_FILE).is_file():
        with np.load(directory / CURVES_FILE) as arrays:
            keys = {name.rsplit("_", 1)[0] for name in arrays.files}
            curves = {key: (arrays[f"{key}_x"], arrays[f"{key}_y"]) for key in keys}
    document["curves"] = curves
    return document
