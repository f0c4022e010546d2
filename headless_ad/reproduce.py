"""One command per family reproduces the paper's comparison: Headless-AD, the ADs and the ablations,
over several training seeds, evaluated on the same suites and reported with bootstrap CIs.

`python -m headless_ad reproduce bandit --seeds 3 --jobs 2` prints its plan (runs, estimated time),
collects the histories every run needs, trains and evaluates the runs not yet finished (two 1-thread
jobs side by side by default; an interrupted reproduction continues where it stopped: a finished
run is reused, a checkpointed one resumed), then writes the report.

Like the presets, this module is an experiment definition: it names families and their suites.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import tyro

from headless_ad.collect import collect
from headless_ad.evaluate import EvaluateConfig
from headless_ad.presets import PRESETS
from headless_ad.results import RESULTS_FILE, evaluation_name
from headless_ad.train_config import TrainConfig, replace_options

Family = Literal["bandit", "contextual_bandit", "darkroom", "minigrid"]
Scale = Literal["quick", "cpu"]


@dataclass
class ReproduceConfig:
    family: tyro.conf.Positional[Family]
    """Environment family whose comparison to reproduce."""
    seeds: int = 3
    """Training seeds per method (0, 1, ...)."""
    jobs: int = 2
    """Runs trained side by side, one torch thread each."""
    scale: Scale = "cpu"
    """quick: a tiny smoke test of the whole pipeline (minutes, meaningless numbers); cpu: the
    reduced CPU scale of docs/results/<family>.md."""
    plan_only: bool = False
    """Print the plan and stop."""


@dataclass(frozen=True)
class Job:
    """One training run and its evaluation."""

    train: TrainConfig
    evaluate: EvaluateConfig
    seconds: float
    """Estimated wall time on one core (training + evaluation)."""

    @property
    def run_dir(self) -> Path:
        return Path("runs") / self.train.run_name

    @property
    def results_dir(self) -> Path:
        ev = self.evaluate
        name = evaluation_name(
            self.train.optimisation.total_steps, ev.suites, ev.seed, ev.num_instances, ev.horizon, ev.selection,
            self.train.evaluation.temperature_schedule.describe(),
        )  # fmt: skip
        return self.run_dir / "evaluations" / name

    def status(self) -> str:
        if (self.results_dir / RESULTS_FILE).is_file():
            return "done"
        return "resume" if (self.run_dir / "checkpoint.pt").is_file() else "new"


@dataclass(frozen=True)
class Scaled:
    """What a scale changes in a family's preset."""

    total_steps: int
    collect_instances: int
    collect_horizon: int
    eval_instances: int
    eval_horizon: int
    seconds_per_step: float
    """Measured for one 1-thread job on the 2-core machine of docs/results (shared, so rough): the
    plan's estimate until some of its runs finish (then their own times count; measured_rates)."""
    seconds_per_suite: float
    extra: dict = field(default_factory=dict)
    """Further options by name (a smaller window for the quick scale, say; see replace_options)."""


TINY_MODEL = {"d_model": 16, "n_layers": 1, "n_heads": 2}


@dataclass(frozen=True)
class FamilyPlan:
    preset: str
    suites: tuple[str, ...]
    """Where every method is evaluated (a method that cannot act on one reports n/a)."""
    ad_sets: tuple[tuple[str, tuple[str, ...]], ...]
    """AD trained per action set: (--collect.train-suite, the suites it is evaluated on)."""
    ablations: bool
    scales: dict[str, Scaled]
    permuted_head: int
    """Head width of AD-permuted (the widest evaluated action set it should act on)."""
    action_dim: int = 0
    """> 0: also train Headless-AD with this action-embedding width (orthonormal beyond d_model)."""


def episodic_macro_action_plan(preset: str, held_out: str) -> FamilyPlan:
    """Darkroom's and MiniGrid's comparison on held-out goals or layouts (`held_out`) with every
    action set: AD on the 50 train actions (index i = the instance's i-th action), and the ADs that
    already knew the held-out actions (trained on the 75 test actions and on all 125)."""
    suites = tuple(f"{held_out}/{actions}" for actions in ("train", "train_permuted", "test_50", "test", "all"))
    return FamilyPlan(
        preset=preset,
        suites=suites,
        ad_sets=(("", suites), ("actions=test", (f"{held_out}/test",)), ("actions=all", (f"{held_out}/all",))),
        ablations=True,
        permuted_head=125,
        action_dim=128,
        scales={
            "quick": Scaled(
                3,
                16,
                400,
                3,
                200,
                0.05,
                2.0,
                {"seq_len": 40, "batch_size": 4, "episode_stride": 1, "anneal_episodes": 5},
            ),
            # A third of the Darkroom preset's 6,000 steps, a ninth of the MiniGrid preset's 18,000:
            # MiniGrid's 27 runs took 108 minutes on 2 cores (docs/results/minigrid.md).
            "cpu": Scaled(2_000, 2_000, 4_000, 50, 4_000, 0.35, 120.0),
        },
    )


FAMILIES: dict[str, FamilyPlan] = {
    "bandit": FamilyPlan(
        preset="bandit",
        suites=("num_10", "num_20", "num_30"),
        ad_sets=(("arms=10", ("num_10",)), ("arms=20", ("num_20",)), ("arms=30", ("num_30",))),
        ablations=True,
        permuted_head=30,
        scales={
            "quick": Scaled(3, 64, 40, 5, 40, 0.05, 1.0, {"seq_len": 40, "batch_size": 4}),
            # A 150-step window over 300-step histories: a third of the preset's step time.
            "cpu": Scaled(400, 10_000, 300, 100, 300, 0.65, 15.0, {"seq_len": 150}),
        },
    ),
    "contextual_bandit": FamilyPlan(
        preset="contextual-bandit",
        suites=("num_10", "num_20", "num_30"),
        ad_sets=(("arms=10", ("num_10",)), ("arms=20", ("num_20",)), ("arms=30", ("num_30",))),
        ablations=False,  # the paper compares Headless-AD with AD alone here
        permuted_head=30,
        scales={
            "quick": Scaled(3, 64, 40, 5, 40, 0.05, 1.0, {"seq_len": 40, "batch_size": 4, "ema_decay": 0.0}),
            "cpu": Scaled(1_000, 10_000, 300, 100, 300, 0.5, 10.0),
        },
    ),
    "darkroom": episodic_macro_action_plan("darkroom", "test_goals"),
    "minigrid": episodic_macro_action_plan("minigrid", "test_layouts"),
}


def method_variants(plan: FamilyPlan, base: TrainConfig) -> list[tuple[str, TrainConfig, tuple[str, ...]]]:
    """(run-name slug, training config, evaluated suites) of every method, main comparison first."""
    indexed = replace(base.model, head="indexed")
    variants = [("headless-ad", base, plan.suites)]
    for options, suites in plan.ad_sets:
        slug = "ad-" + (options.replace("=", "").replace(",", "-") or "default")
        collect_config = replace(base.collect, train_suite=options)
        variants.append((slug, replace(base, model=indexed, collect=collect_config), suites))
    permuted_model = replace(indexed, num_actions=plan.permuted_head)
    variants.append(("ad-permuted", replace_options(base, model=permuted_model, permute_actions=True), plan.suites))
    if plan.ablations:
        euclidean = replace(base.scoring, similarity="euclidean")
        variants += [
            ("no-prompt", replace(base, model=replace(base.model, action_prompt=False)), plan.suites),
            ("gaussian", replace(base, model=replace(base.model, gaussian_actions=True)), plan.suites),
            # Nearest action by Euclidean distance; the scoring temperature only shapes sampling.
            ("mse", replace_options(base, loss="mse", scoring=euclidean), plan.suites),
        ]
    if plan.action_dim:
        width = replace(base.model, action_dim=plan.action_dim)
        variants.append((f"action-dim{plan.action_dim}", replace(base, model=width), plan.suites))
    return variants


def plan_jobs(config: ReproduceConfig) -> list[Job]:
    if config.family not in FAMILIES:
        raise ValueError(f"unknown family {config.family!r}; known: {', '.join(FAMILIES)}")
    if config.seeds < 1 or config.jobs < 1:
        raise ValueError(f"--seeds and --jobs must be >= 1, got {config.seeds} and {config.jobs}")
    plan = FAMILIES[config.family]
    scale = plan.scales[config.scale]
    preset = PRESETS[plan.preset][1]
    model = replace(preset.model, **TINY_MODEL) if config.scale == "quick" else preset.model
    base = replace_options(
        preset,
        model=model,
        collect=replace(
            preset.collect,
            num_instances=scale.collect_instances,
            horizon=scale.collect_horizon,
            threads=1,
        ),
        total_steps=scale.total_steps,
        warmup_steps=min(preset.optimisation.warmup_steps, scale.total_steps // 10),
        eval_every=0,
        eval_suites=(),  # evaluated by `evaluate` below, with its per-instance results
        checkpoint_every=max(1, scale.total_steps // 5),
        log_every=max(1, scale.total_steps // 10),
        threads=1,
        **scale.extra,
    )
    jobs = []
    for seed in range(config.seeds):  # seed-major: an early stop leaves every method with some seeds
        for slug, train_config, suites in method_variants(plan, base):
            run_name = f"{reproduction_name(config)}-{slug}-s{seed}"
            evaluate_config = EvaluateConfig(
                checkpoint=Path("runs") / run_name / "checkpoint.pt",
                suites=suites,
                num_instances=scale.eval_instances,
                horizon=scale.eval_horizon,
                selection=("argmax", "sample"),
                threads=1,
            )
            jobs.append(Job(replace(train_config, run_name=run_name, seed=seed), evaluate_config, 0.0))
    per_step, per_suite = measured_rates(jobs) or (scale.seconds_per_step, scale.seconds_per_suite)
    jobs = [
        replace(job, seconds=job.train.optimisation.total_steps * per_step + len(job.evaluate.suites) * per_suite)
        for job in jobs
    ]
    for job in jobs:
        job.train.validate()
    return jobs


def measured_rates(jobs: list[Job]) -> tuple[float, float] | None:
    """(training seconds per step, evaluation seconds per suite), medians over the plan's finished
    runs as their checkpoints and results recorded them; None before any finished. The machine
    and its load decide these far more than any built-in figure can."""
    import numpy as np
    import torch

    per_step, per_suite = [], []
    for job in jobs:
        if job.status() != "done":
            continue
        # A record without the times (or unreadable): not measured; the run itself stays done.
        with contextlib.suppress(OSError, EOFError, KeyError, ValueError, ZeroDivisionError, RuntimeError):
            document = json.loads((job.results_dir / RESULTS_FILE).read_text())
            checkpoint = torch.load(job.run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
            step_seconds = checkpoint["train_seconds"] / checkpoint["step"]
            suite_seconds = document["wall_seconds"] / len(document["evaluation"]["suites"])
            per_step.append(step_seconds)
            per_suite.append(suite_seconds)
    return (float(np.median(per_step)), float(np.median(per_suite))) if per_step else None


def reproduction_name(config: ReproduceConfig) -> str:
    """Prefix of the reproduction's run names (runs/<prefix>-<method>-s<seed>), its logs and report."""
    return f"reproduce-{config.family}-{config.scale}"


def run_job(job: Job, log_path: Path) -> tuple[str, float, str]:
    """Train (or resume) and evaluate one run, its output going to `log_path`; (name, seconds, error)."""
    from headless_ad.evaluate import evaluate_checkpoint
    from headless_ad.trainer import train

    start = time.perf_counter()
    with open(log_path, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            checkpoint = job.run_dir / "checkpoint.pt"
            if not checkpoint.is_file() or _checkpoint_step(checkpoint) < job.train.optimisation.total_steps:
                train(replace_options(job.train, resume=checkpoint.is_file()))
            evaluate_checkpoint(replace(job.evaluate, overwrite=True))
        except Exception as error:  # reported by the parent; the other runs go on
            print(f"error: {type(error).__name__}: {error}")
            return job.train.run_name, time.perf_counter() - start, f"{type(error).__name__}: {error}"
    return job.train.run_name, time.perf_counter() - start, ""


def _checkpoint_step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=False)["step"])


def describe_plan(jobs: list[Job], workers: int) -> str:
    lines = ["| run | method | steps | suites | status | est. min |", "|---|---|---|---|---|---|"]
    pending = []
    for job in jobs:
        status = job.status()
        if status != "done":
            pending.append(job)
        lines.append(
            f"| {job.train.run_name} | {_method(job.train)} | {job.train.optimisation.total_steps} | "
            f"{len(job.evaluate.suites)} | {status} | {job.seconds / 60:.1f} |"
        )
    total = sum(job.seconds for job in pending)
    lines.append(
        f"\n{len(jobs)} runs, {len(jobs) - len(pending)} done; {len(pending)} to run: about "
        f"{total / 60 / max(1, min(workers, len(pending) or 1)):.0f} min with {workers} jobs side by side "
        "(estimated from the step and suite times of this reproduction's finished runs, else from "
        "1-thread times measured on a 2-core CPU)"
    )
    return "\n".join(lines)


def _method(config: TrainConfig) -> str:
    from headless_ad.methods import method_name
    from headless_ad.train_config import to_jsonable

    return method_name(to_jsonable(config))


def reproduce(config: ReproduceConfig, report: Callable[[list[Path], Path], object] | None = None) -> Path:
    """Plan, collect, run what is not finished, report; returns the report folder."""
    jobs = plan_jobs(config)
    print(
        f"reproduce {config.family} at {config.scale} scale, {config.seeds} seeds\n" + describe_plan(jobs, config.jobs)
    )
    out = Path("runs") / f"{reproduction_name(config)}-report"
    logs = Path("runs") / f"{reproduction_name(config)}-logs"
    if config.plan_only:
        return out
    start = time.perf_counter()
    # Every store first, one writer each, before jobs read them side by side.
    stores = {json.dumps(dataclasses.asdict(job.train.collect), default=str): job.train.collect for job in jobs}
    for collect_config in stores.values():
        collect(collect_config)
    pending = [job for job in jobs if job.status() != "done"]
    for job in pending:
        if job.status() == "new" and job.run_dir.exists():
            # This reproduction's own run, stopped before its first checkpoint: nothing to resume.
            print(f"starting {job.run_dir} again (stopped before its first checkpoint)")
            shutil.rmtree(job.run_dir)
    logs.mkdir(parents=True, exist_ok=True)
    failures = []
    # Each job one torch thread (set before the workers start, so their OpenMP pools obey it).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=config.jobs, mp_context=context) as pool:
        futures = [pool.submit(run_job, job, logs / f"{job.train.run_name}.txt") for job in pending]
        for done, future in enumerate(as_completed(futures), 1):
            name, seconds, error = future.result()
            elapsed = (time.perf_counter() - start) / 60
            status = f"FAILED ({error}); see {logs / name}.txt" if error else "done"
            print(f"[{done}/{len(pending)}] {name} {status} in {seconds / 60:.1f} min ({elapsed:.0f} min elapsed)")
            sys.stdout.flush()
            if error:
                failures.append(name)
    print(f"ran {len(pending)} runs in {(time.perf_counter() - start) / 60:.1f} min wall")
    if failures:
        print(f"{len(failures)} runs failed ({', '.join(failures)}); no report: run the command again to retry them")
        return out
    if report is not None:
        report([job.run_dir for job in jobs], out)
    return out
