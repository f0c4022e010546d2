"""Run directories: where a run's outputs may go, what a resumed run may change, and how a run
that diverged stops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RUNS = Path("runs")
RESERVED_NAMES = frozenset({"histories"})
"""Folders of runs/ that hold something other than runs (the default history stores)."""

RESUMABLE = frozenset(
    {
        "run_name",
        "resume",
        "device",
        "threads",
        "precision",
        "compile",
        "log_every",
        "eval_every",
        "checkpoint_every",
        "eval_suites",
        "eval_pictures",
        "eval_instances",
        "eval_horizon",
        "eval_seed",
        "eval_selection",
        "keep_best",
        "sample_temperature",
        "final_sample_temperature",
        "anneal_episodes",
        "anneal_steps",
        "sample_min_p",
        "collect.threads",
    }
)
"""Options a resumed run may change, named as their flags are (eval_every: --eval-every): where
and how fast it computes, how often it logs, saves and evaluates, and how evaluation samples.
Every other option shapes the optimisation or the data (learning rate and its schedule, batches,
model, histories, loss, scoring, seeds), so a resumed run refuses a change to it rather than
pretend to honour it."""


class TrainingDiverged(RuntimeError):
    """The loss or the gradient became non-finite; training stopped and kept its last good checkpoint."""


def check_run_name(name: str) -> None:
    """A run name is one plain folder name: its outputs stay inside runs/<name>/."""
    if (
        not name
        or name in (".", "..")
        or name.startswith(".")
        or any(separator in name for separator in ("/", "\\", "\0"))
        or Path(name).is_absolute()
    ):
        raise ValueError(
            f"--run-name {name!r}: a run name is one folder name under runs/ "
            "(not empty, not hidden, no path separators)"
        )
    if name in RESERVED_NAMES:
        raise ValueError(f"--run-name {name!r}: runs/{name}/ holds the history stores; choose another name")


def check_run_directory(run_dir: Path, resume: bool) -> None:
    """Refuse a run directory that is a history store (e.g. one collected with --out runs/<name>),
    and, for a new run, one holding another run's outputs (a start stopped before its first
    checkpoint): a new run would overwrite its config and mix its events with theirs."""
    if (run_dir / "meta.json").is_file() and not (run_dir / "config.json").exists():
        raise ValueError(f"{run_dir} is a history store, not a run; choose another --run-name")
    outputs = (
        sorted(entry.name for entry in run_dir.iterdir() if not entry.name.startswith(".")) if run_dir.is_dir() else []
    )
    if outputs and not resume:
        shown = ", ".join(outputs[:3]) + (", ..." if len(outputs) > 3 else "")
        raise FileExistsError(
            f"{run_dir} holds the outputs of an earlier start ({shown}) but no checkpoint to --resume; "
            "choose another --run-name or remove it"
        )


def flag(key: str) -> str:
    """The command-line flag of a dotted config key (collect.num_instances -> --collect.num-instances)."""
    return "--" + key.replace("_", "-")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resume_changes(
    saved: dict[str, Any], requested: dict[str, Any], defaults: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """Compare a checkpoint's config with the one a resume asks for (each as option values, keyed
    by option name: train_config.option_values); returns the changes a resumed run applies and
    those it must refuse, as "--flag old -> new". An option the checkpoint does not record (added
    to the code since) counts as its default then."""
    applied, refused = [], []
    for key, value in requested.items():
        old = saved.get(key, defaults.get(key, value))
        if old == value or key == "resume":
            continue
        change = f"{flag(key)} {_show(old)} -> {_show(value)}"
        (applied if key in RESUMABLE else refused).append(change)
    return applied, refused


def _show(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(item) for item in value) or "(none)"
    return str(value) if value != "" else "''"
