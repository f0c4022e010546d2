"""`python -m headless_ad evaluate`: a checkpoint acts in context on held-out suites beside the
source algorithm and random; the table, per-instance results and curves are written beside it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from headless_ad.action_embeddings import ActionScoring, scoring_for
from headless_ad.episode_gifs import write_suite_gifs
from headless_ad.evaluation import SuiteResult, evaluate_in_context, run_baselines
from headless_ad.evaluation_summary import format_table, save_curves
from headless_ad.files import atomic_write_text, check_writable_folder
from headless_ad.policy import Selection, TemperatureSchedule, check_schedule_fits
from headless_ad.progress import progress_bar
from headless_ad.results import RESULTS_FILE, checkpoint_prefix, evaluation_name, save_evaluation
from headless_ad.tasks.base import check_observation_size


@dataclass
class EvaluateConfig:
    checkpoint: Path
    """A checkpoint.pt written by `train`, or the best.pt it keeps on a validation suite."""
    suites: tuple[str, ...] = ()
    """Suites to run; default: the task's paper suites. Bandits also take custom specs such as
    arms=50,means=uniform,instances=200,seed=7 (means: skewed, inverse, uniform; arms=4-20 for a range)."""
    num_instances: int = 100
    """Instances per named suite."""
    horizon: int = 0
    """Steps per evaluation rollout; 0 = the training config's (`--eval-horizon`, else the histories' horizon)."""
    selection: tuple[Selection, ...] = ("argmax", "sample")
    """How the model picks among the available actions."""
    sample_temperature: float | None = None
    """`sample` draws from softmax(logits / sample_temperature); default: the checkpoint's
    training config (`--sample-temperature` of `train`)."""
    final_sample_temperature: float | None = None
    """With `anneal_episodes` or `anneal_steps`: the temperature reached after that many episodes or
    steps; default: the checkpoint's."""
    anneal_episodes: int | None = None
    """Anneal the temperature over each instance's first episodes (0: constant); default: the checkpoint's."""
    anneal_steps: int | None = None
    """Anneal it over each instance's first steps instead (0: constant); default: the checkpoint's.
    Give 0 to the other one to switch from a checkpoint's annealing over episodes to steps, or back."""
    sample_min_p: float | None = None
    """Min-p sampling: drop the actions less likely than this share of the most likely one before
    the temperature applies (0: keep all); default: the checkpoint's."""
    seed: int = 1
    """Seeds env noise and every agent's randomness (the same for all agents)."""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu, cuda, cuda:1, ..."""
    threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    gifs: int = 0
    """GIFs of the model's first and last episodes on the first `gifs` instances of every suite,
    beside the checkpoint (tasks that can draw their instances: darkroom, minigrid); 0: none."""
    overwrite: bool = False
    """Replace an earlier evaluation with the same settings (its folder under <run>/evaluations/)."""


def evaluate_checkpoint(config: EvaluateConfig) -> list[SuiteResult]:
    """Evaluate a trained model on its task's suites; prints a table and writes it beside the checkpoint."""
    from headless_ad.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint
    from headless_ad.hardware import resolve_device
    from headless_ad.tasks import get_task
    from headless_ad.train_config import nested_config

    if config.num_instances < 1 or config.horizon < 0:
        raise ValueError("--num-instances must be >= 1 and --horizon >= 0")
    if config.sample_temperature is not None and config.sample_temperature <= 0:
        raise ValueError(f"--sample-temperature must be > 0, got {config.sample_temperature}")
    if config.final_sample_temperature is not None and config.final_sample_temperature <= 0:
        raise ValueError(f"--final-sample-temperature must be > 0, got {config.final_sample_temperature}")
    if config.sample_min_p is not None and not 0 <= config.sample_min_p < 1:
        raise ValueError(f"--sample-min-p must be in [0, 1), got {config.sample_min_p}")
    for flag, length in (("--anneal-episodes", config.anneal_episodes), ("--anneal-steps", config.anneal_steps)):
        if length is not None and length < 0:
            raise ValueError(f"{flag} must be >= 0, got {length}")
    for flag, value in (
        ("--sample-temperature", config.sample_temperature),
        ("--final-sample-temperature", config.final_sample_temperature),
    ):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{flag} must be finite, got {value}")
    if config.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {config.threads}")
    checkpoint = load_checkpoint(config.checkpoint)
    check_writable_folder(Path(config.checkpoint).parent, "evaluation results")
    task = get_task(checkpoint["task"])
    if config.gifs < 0:
        raise ValueError(f"--gifs must be >= 0, got {config.gifs}")
    if config.gifs and not task.can_render:
        raise ValueError(f"--gifs: task {task.name!r} cannot draw its instances")
    train_config = nested_config(checkpoint["config"])
    trained_evaluation = train_config["evaluation"]

    schedule_options = (
        "sample_temperature",
        "final_sample_temperature",
        "anneal_episodes",
        "anneal_steps",
        "sample_min_p",
    )
    given = {name: getattr(config, name) for name in schedule_options if getattr(config, name) is not None}
    try:
        temperature = TemperatureSchedule.from_options({**trained_evaluation, **given})
        check_schedule_fits(temperature, task)
    except ValueError as error:
        raise CheckpointError(f"{config.checkpoint}: {error}") from None
    horizon = config.horizon or trained_evaluation.get("eval_horizon") or train_config["collect"]["horizon"]
    train_seed = train_config["collect"]["seed"]
    names = config.suites or task.default_eval_suites
    suites = {name: task.parse_suite(name, config.num_instances, horizon, train_seed) for name in names}
    for name, suite in suites.items():
        check_observation_size(task, suite, checkpoint["model_config"]["observation_size"], f"--suites {name!r}")
    name = evaluation_name(
        checkpoint["step"], names, config.seed, config.num_instances, horizon, config.selection, temperature.describe(),
        prefix=checkpoint_prefix(config.checkpoint),
    )  # fmt: skip
    results_dir = Path(config.checkpoint).parent / "evaluations" / name
    if (results_dir / RESULTS_FILE).exists() and not config.overwrite:
        raise FileExistsError(f"{results_dir} holds an evaluation with these settings; pass --overwrite to replace it")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    try:
        model = model_from_checkpoint(checkpoint, device)
    except CheckpointError as error:
        raise CheckpointError(f"{config.checkpoint}: {error}") from None
    start = time.perf_counter()
    rollouts_per_suite = len(task.baselines) + len(config.selection)
    total_steps = sum(suite.horizon for suite in suites.values()) * rollouts_per_suite
    with progress_bar(total_steps, f"evaluating {len(suites)} suites") as bar:
        baselines = {name: run_baselines(task, suite, config.seed, bar.update) for name, suite in suites.items()}
        results = evaluate_in_context(
            task,
            model,
            suites,
            baselines,
            config.selection,
            scoring_for(model.config, ActionScoring(**train_config["scoring"])),
            config.seed,
            temperature,
            bar.update,
        )
    wall_time = time.perf_counter() - start
    agents = [*task.baselines, *[f"model_{s}" for s in config.selection]]
    table = format_table(results, agents)
    header = (
        f"{config.checkpoint} (step {checkpoint['step']}), {config.num_instances} instances per suite, "
        f"{horizon} steps, "
        f"seed {config.seed}, sample temperature {temperature.describe()}, {wall_time:.1f} s\n"
        f"cells: {task.metric_name} per agent; "
        f"normalized = (M_model - M_random) / (M_{task.source_algorithm} - M_random)\n"
    )
    print(header + table)
    description = {
        "checkpoint": str(config.checkpoint),
        "step": checkpoint["step"],
        "train_config": train_config,
        "evaluation": {
            "suites": list(names), "seed": config.seed, "num_instances": config.num_instances, "horizon": horizon,
            "selection": list(config.selection), "sample_temperature": temperature.describe(),
        },
        "wall_seconds": wall_time,
    }  # fmt: skip
    save_evaluation(results_dir, task, results, description, overwrite=config.overwrite)
    print(f"per-instance results in {results_dir}")
    out_dir = Path(config.checkpoint).parent
    atomic_write_text(out_dir / "evaluation.md", header + "\n" + table + "\n")
    save_curves(results, out_dir / "evaluation_curves.npz")
    for result in results if config.gifs else []:
        for selection in config.selection:
            rollout = result.rollouts[f"model_{selection}"]
            write_suite_gifs(task, f"{result.suite}-{selection}", result.spec, rollout, config.gifs, out_dir)
    return results
