"""Train Headless-AD (or AD, or an ablation) on a history store: fresh random action embeddings
every batch, InfoNCE over the available actions, periodic in-context evaluation, TensorBoard and
atomic checkpoints.

`train` checks the run and takes its lock; `run_training` builds the run and steps it. Under
torchrun every rank computes its share of each global batch (`batch_size` is global) and
DistributedDataParallel averages the gradients; rank 0 alone collects, logs, evaluates and saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from headless_ad.action_embeddings import ActionScoring, action_vectors, embed_actions, scoring_for, with_no_action_row
from headless_ad.checkpoints import (
    CHECKPOINT_VERSION,
    CheckpointError,
    atomic_torch_save,
    load_checkpoint,
    non_finite_tensors,
)
from headless_ad.collect import collect, open_store
from headless_ad.distributed import Distributed, init_distributed
from headless_ad.episode_gifs import early_and_late_frames
from headless_ad.evaluation import SuiteResult, evaluate_in_context, run_baselines
from headless_ad.evaluation_summary import curves_figure, format_table, metric_tag
from headless_ad.files import atomic_write_json, check_writable_folder, remove_stale_temporaries
from headless_ad.hardware import resolve_device, resolve_precision
from headless_ad.histories import Batch, HistoryStore, WindowSampler
from headless_ad.locks import exclusive_lock
from headless_ad.losses import headless_loss
from headless_ad.methods import check_indexed_training
from headless_ad.model import HeadlessTransformer, ModelConfig
from headless_ad.progress import progress_bar
from headless_ad.results import evaluation_name, save_evaluation
from headless_ad.runs import RUNS, TrainingDiverged, check_run_directory, resume_changes
from headless_ad.tasks import Task, get_task
from headless_ad.train_config import (
    EvaluationConfig,
    TrainConfig,
    config_markdown,
    default_run_name,
    option_values,
    to_jsonable,
)
from headless_ad.training_state import TrainingState, missing_resume_state


def train(config: TrainConfig) -> Path:
    """Train (or resume) a run; returns the checkpoint path."""
    config.validate()
    if not config.run_name:
        if config.runtime.resume:
            raise ValueError("--resume needs the --run-name of the run to continue")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError("under torchrun pass --run-name (every rank must agree on the run)")
        config = dataclasses.replace(config, run_name=default_run_name(config))
    run_dir = RUNS / config.run_name
    checkpoint_path = run_dir / "checkpoint.pt"
    if config.runtime.resume and not checkpoint_path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
    if not config.runtime.resume and checkpoint_path.exists():
        raise FileExistsError(f"{checkpoint_path} exists: pass --resume to continue it or choose another --run-name")
    check_run_directory(run_dir, config.runtime.resume)
    check_writable_folder(run_dir, "run outputs")
    # One writer per run (torchrun: rank 0 writes for all).
    with exclusive_lock(run_dir, "run") if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext():
        return run_training(config, run_dir, checkpoint_path)


def load_checkpoint_to_resume(config: TrainConfig, checkpoint_path: Path) -> dict[str, Any]:
    """The checkpoint `--resume` continues, after checking that the options asked for either may
    change on resume (they are applied, and recorded in config.json) or equal the checkpoint's;
    anything else is refused in one line."""
    checkpoint = load_checkpoint(checkpoint_path, expected_task=config.task)
    missing = missing_resume_state(checkpoint)
    if missing:
        raise CheckpointError(f"{checkpoint_path}: holds no {', '.join(missing)} state, so training cannot resume")
    total_steps = config.optimisation.total_steps
    if total_steps < checkpoint["step"]:
        raise ValueError(f"--total-steps {total_steps} is below the step of {checkpoint_path} ({checkpoint['step']})")
    applied, refused = resume_changes(
        option_values(checkpoint["config"]), option_values(config), option_values(TrainConfig())
    )
    if refused:
        raise ValueError(
            f"--resume: {checkpoint_path} was trained with other values of options that shape the optimisation "
            f"or the data ({'; '.join(refused)}); resume without changing them, or start a new --run-name"
        )
    if applied and checkpoint["step"] < total_steps:
        print(f"resuming with changed {'; '.join(applied)} (recorded in config.json)")
    return checkpoint


def model_config_for(config: TrainConfig, task: Task, store: HistoryStore) -> ModelConfig:
    """The model the run trains: the config's, with what the data decides (window, observations,
    an indexed head's width) filled in."""
    train_suite = task.train_suite(
        config.collect.num_instances, config.collect.horizon, config.collect.seed, config.collect.train_suite
    )
    model_config = dataclasses.replace(
        config.model,
        max_steps=config.data.seq_len,
        observation_kind=task.observation_kind,
        observation_size=task.observation_size(train_suite),
    )
    if model_config.head == "indexed":
        counts = np.asarray(store.action_mask).sum(axis=1)
        data = config.data
        check_indexed_training(
            counts, model_config.num_actions, data.permute_actions, data.mixed_action_counts, str(store.path)
        )
        if not model_config.num_actions:
            model_config = dataclasses.replace(model_config, num_actions=store.max_actions)
    return model_config


def divergence_message(step: int, what: str, config: TrainConfig, checkpoint_path: Path, saved_step: int) -> str:
    kept = f"{checkpoint_path} keeps step {saved_step}" if saved_step else "no checkpoint was written"
    optim = config.optimisation
    return (
        f"training diverged at step {step}: {what}; stopped, {kept}. "
        f"Lower --learning-rate (now {optim.learning_rate:g}) or --grad-clip (now {optim.grad_clip:g})"
    )


def non_finite_values(loss: torch.Tensor, grad_norm: torch.Tensor) -> str:
    return "; ".join(
        f"{name} is {value.item()}"
        for name, value in (("the loss", loss.detach()), ("the gradient norm", grad_norm))
        if not bool(torch.isfinite(value).item())
    )


class Checkpointer:
    """Writes the run's checkpoint dict atomically (and, with --keep-best, best.pt, the same dict
    at the best evaluation so far), and never one whose weights are not finite."""

    def __init__(self, config: TrainConfig, model_config: ModelConfig, path: Path) -> None:
        self.config, self.model_config, self.path = config, model_config, path
        self.best_path = path.with_name("best.pt")
        self.saved_step = 0

    def check_finite(self, state: TrainingState) -> None:
        """Stop the run if its weights hold NaN or infinity: they can neither act nor be saved."""
        weights = {"model": state.model.state_dict(), "ema_model": state.ema.module.state_dict() if state.ema else {}}
        bad = [f"{key}.{name}" for key, part in weights.items() for name in non_finite_tensors(part)]
        if bad:
            what = f"non-finite weights ({bad[0]})"
            raise TrainingDiverged(divergence_message(state.step, what, self.config, self.path, self.saved_step))

    def save(self, state: TrainingState, path: Path | None = None) -> None:
        """Write `state` to the run's checkpoint, or to `path` (best.pt)."""
        self.check_finite(state)  # a checkpoint that cannot act is never written over a good one
        header = {
            "version": CHECKPOINT_VERSION,
            "task": self.config.task,
            "config": to_jsonable(self.config),
            "model_config": dataclasses.asdict(self.model_config),
        }
        atomic_torch_save({**header, **state.state_dict()}, path or self.path)
        if path is None:
            self.saved_step = state.step

    def keep_if_best(self, state: TrainingState, results: list[SuiteResult]) -> None:
        """--keep-best: save `state` to best.pt when `results` beat every earlier evaluation."""
        previous = state.best
        record = new_best(results, self.config.evaluation, previous, state.step)
        if record is None:
            return
        if previous is not None and previous["measure"] != record["measure"]:
            tqdm.write(
                f"--keep-best: the evaluation settings changed since step {previous['step']}; best.pt is chosen "
                f"again among the evaluations from step {state.step} on"
            )
        state.best = record
        self.save(state, self.best_path)
        tqdm.write(f"step {state.step}: best on {self.config.evaluation.keep_best} so far ({record['score']:.3f})")

    def adopt_later_best(self, state: TrainingState) -> None:
        """On resume: best.pt may record a best evaluated after the checkpoint was written (the run
        stopped in between). Keep its record, so that a replay that scores otherwise (another
        device, say) cannot replace it with a lower score."""
        if not self.best_path.is_file():
            return
        record = load_checkpoint(self.best_path, expected_task=self.config.task).get("best")
        if record is not None and record["step"] > state.step:
            state.best = record


class InContextEvaluation:
    """The run's evaluation suites, with the baselines' rollouts computed once, and the model's
    rollouts on them at any step."""

    def __init__(self, config: TrainConfig, task: Task, horizon: int, scoring: ActionScoring) -> None:
        self.config, self.task, self.scoring = config, task, scoring
        evaluation = config.evaluation
        self.suites = {
            name: task.parse_suite(
                name, evaluation.eval_instances, evaluation.eval_horizon or horizon, config.collect.seed
            )
            for name in evaluation.eval_suites
        }
        self.seed = evaluation.eval_seed
        self.baselines = {name: run_baselines(task, suite, seed=self.seed) for name, suite in self.suites.items()}

    def run(self, model: HeadlessTransformer) -> list[SuiteResult]:
        evaluation = self.config.evaluation
        return evaluate_in_context(
            self.task, model, self.suites, self.baselines, evaluation.eval_selection, self.scoring, self.seed,
            evaluation.temperature_schedule,
        )  # fmt: skip

    def save(self, run_dir: Path, results: list[SuiteResult], step: int, wall_seconds: float) -> None:
        """Per-instance results, as `evaluate` saves them (runs/<run>/evaluations/train-...)."""
        config, schedule = self.config.evaluation, self.config.evaluation.temperature_schedule.describe()
        horizon = config.eval_horizon or self.config.collect.horizon
        name = evaluation_name(
            step, config.eval_suites, self.seed, config.eval_instances, horizon, config.eval_selection, schedule,
            prefix="train-",
        )  # fmt: skip
        description = {
            "checkpoint": str(run_dir / "checkpoint.pt"),
            "step": step,
            "train_config": to_jsonable(self.config),
            "evaluation": {
                "suites": list(config.eval_suites), "seed": self.seed, "num_instances": config.eval_instances,
                "horizon": horizon, "selection": list(config.eval_selection), "sample_temperature": schedule,
            },
            "wall_seconds": wall_seconds,
        }  # fmt: skip
        # The same checkpoint step and settings give the same evaluation: a re-run may replace it.
        save_evaluation(run_dir / "evaluations" / name, self.task, results, description, overwrite=True)


def best_measure(evaluation: EvaluationConfig) -> dict[str, Any]:
    """What a --keep-best score measures; scores of different measures are never compared (the
    evaluation options may change on --resume)."""
    return {
        "suite": evaluation.keep_best,
        "agent": "model_sample" if "sample" in evaluation.eval_selection else "model_argmax",
        "instances": evaluation.eval_instances,
        "seed": evaluation.eval_seed,
        "horizon": evaluation.eval_horizon,
        "temperature": evaluation.temperature_schedule.describe(),
    }


def new_best(
    results: list[SuiteResult], evaluation: EvaluationConfig, best: dict[str, Any] | None, step: int
) -> dict[str, Any] | None:
    """The record of best.pt if this evaluation beats `best` on --keep-best's suite, else None."""
    measure = best_measure(evaluation)
    (result,) = (result for result in results if result.suite == measure["suite"])
    score = float(result.normalized(measure["agent"]))
    if not math.isfinite(score) or (best is not None and best["measure"] == measure and score <= best["score"]):
        return None
    return {"measure": measure, "step": step, "score": score}


class TrainingClock:
    """Wall seconds a run spends training (collection, set-up and steps), evaluation excluded: the
    cost side of quality per CPU-minute, logged beside every evaluation as time/train_minutes."""

    def __init__(self) -> None:
        self.started, self.excluded = time.perf_counter(), 0.0

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - start

    def seconds(self, before: float = 0.0) -> float:
        """Seconds since the clock started, pauses excluded, plus `before` (a resumed run's)."""
        return before + time.perf_counter() - self.started - self.excluded


class RunLog:
    """What rank 0 shows and records: TensorBoard scalars, figures and pictures, the progress bar
    on a terminal, log lines in a file."""

    def __init__(self, config: TrainConfig, run_dir: Path, task: Task, step: int, tokens_per_step: int) -> None:
        self.config, self.task, self.tokens_per_step = config, task, tokens_per_step
        self.writer = SummaryWriter(run_dir)
        self.writer.add_text("config", config_markdown(config), global_step=step)
        self.bar = progress_bar(config.optimisation.total_steps, config.run_name, initial=step)
        self.last_time, self.last_step, self.data_seconds = time.perf_counter(), step, 0.0

    def training(self, step: int, loss: torch.Tensor, logits: torch.Tensor, batch: Batch, grad_norm, lr: float) -> None:
        now = time.perf_counter()
        elapsed, steps_done = now - self.last_time, step - self.last_step
        accuracy = (logits.argmax(-1) == batch.targets).float().mean().item()
        scalars = {
            "train/loss": loss.item(),
            "train/accuracy": accuracy,
            "train/grad_norm": grad_norm.item(),
            "train/learning_rate": lr,
            "train/tokens_seen": step * self.tokens_per_step,
            "perf/steps_per_second": steps_done / elapsed,
            "perf/tokens_per_second": steps_done * self.tokens_per_step / elapsed,
            "perf/data_fraction": self.data_seconds / elapsed,
        }
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        status = f"loss {loss.item():.4f} acc {accuracy:.3f} lr {lr:.2e}"
        if self.bar.disable:  # a file or pipe gets log lines; a terminal the bar
            total = self.config.optimisation.total_steps
            print(f"step {step}/{total} {status} {steps_done / elapsed:.2f} steps/s", flush=True)
        else:
            self.bar.set_postfix_str(status, refresh=False)
        self.restart_clock(step)

    def restart_clock(self, step: int) -> None:
        """Throughput counts training only: the clock restarts after logging and evaluation."""
        self.last_time, self.last_step, self.data_seconds = time.perf_counter(), step, 0.0

    def evaluation(self, results: list[SuiteResult], step: int, seconds: float, train_seconds: float) -> None:
        writer, task, selections = self.writer, self.task, self.config.evaluation.eval_selection
        writer.add_scalar("time/train_minutes", train_seconds / 60, step)
        for result in results:
            for selection in selections:
                agent = f"model_{selection}"
                writer.add_scalar(f"eval/{result.suite}/normalized_{selection}", result.normalized(agent), step)
                for name, value in result.extra_metrics(agent).items():
                    writer.add_scalar(f"eval/{result.suite}/{name.replace(' ', '_')}_{selection}", value, step)
            # The raw measure beside the normalized score, baselines included (flat reference lines).
            for agent in result.rollouts:
                writer.add_scalar(f"eval/{result.suite}/{metric_tag(task)}/{agent}", result.metric(agent), step)
            writer.add_figure(f"eval/{result.suite}/curves", curves_figure(result), step)
            if self.config.evaluation.eval_pictures and "model_sample" in result.rollouts:
                # The first instance's first and last episodes, one image per step.
                frames = early_and_late_frames(task, result.spec, result.rollouts["model_sample"], instance=0)
                writer.add_images(f"eval/{result.suite}/episodes_sample", np.stack(frames), step, dataformats="NHWC")
        writer.add_scalar("perf/eval_seconds", seconds, step)
        agents = [*task.baselines, *(f"model_{selection}" for selection in selections)]
        tqdm.write(f"step {step}: in-context evaluation\n{format_table(results, agents)}")

    def close(self) -> None:
        self.bar.close()
        self.writer.close()


def train_step(
    state: TrainingState,
    trained: torch.nn.Module,
    batch: Batch,
    config: TrainConfig,
    scoring: ActionScoring,
    shard_rows: slice,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """One optimizer step on `batch`; returns loss, logits, the gradient norm before clipping, and
    whether the step was taken: not when the loss or the gradient is not finite (the caller stops)."""
    model_config, device, optim = state.model.config, state.embedding_generator.device, config.optimisation
    # Drawn for the global batch on every rank (same generator), each keeping its own rows.
    embeddings = action_vectors(
        model_config, optim.batch_size, batch.action_mask.shape[1], state.embedding_generator, device,
        config.data.permute_actions,
    )[shard_rows]  # fmt: skip
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        outputs = trained(
            embeddings,
            batch.action_mask,
            batch.observations,
            embed_actions(with_no_action_row(embeddings), batch.prev_actions),
            batch.prev_rewards,
            prev_observations=batch.prev_observations,
            prev_dones=batch.prev_dones,
        )
    loss, logits = headless_loss(
        outputs.float(), embeddings, batch.action_mask, batch.targets, scoring, optim.loss, optim.label_smoothing,
        batch.target_spread, batch.target_probabilities,
    )  # fmt: skip
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(state.model.parameters(), optim.grad_clip)
    finite = bool((torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)).item())
    if finite:
        state.optimizer.step()
        state.scheduler.step()
        if state.ema is not None:
            state.ema.update_parameters(state.model)
        state.step += 1
    return loss, logits, grad_norm, finite


def setup_runtime(config: TrainConfig) -> tuple[Distributed, torch.device, torch.dtype]:
    runtime, batch_size = config.runtime, config.optimisation.batch_size
    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)
    world = init_distributed(resolve_device(runtime.device))
    device = resolve_device(runtime.device, world.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if batch_size % world.world_size:
        raise ValueError(f"--batch-size {batch_size} does not split over {world.world_size} processes")
    return world, device, resolve_precision(runtime.precision, device)


def run_training(config: TrainConfig, run_dir: Path, checkpoint_path: Path) -> Path:
    """`train`, holding the run's lock: build the run (or restore it), then step it to the end."""
    clock = TrainingClock()
    task = get_task(config.task)
    data, optim, runtime = config.data, config.optimisation, config.runtime
    total_steps = optim.total_steps
    checkpoint = load_checkpoint_to_resume(config, checkpoint_path) if runtime.resume else None
    if checkpoint is not None and checkpoint["step"] >= total_steps:
        print(f"{checkpoint_path} is already at step {checkpoint['step']} of {total_steps}: nothing to train")
        return checkpoint_path
    for stale in remove_stale_temporaries(run_dir):
        print(f"removed {stale}, left by a killed writer")
    world, device, dtype = setup_runtime(config)
    torch.manual_seed(config.seed)

    if world.is_main:
        collect(config.collect)
    world.barrier()
    store = open_store(config.collect)
    sampler = WindowSampler(
        store, data.seq_len, optim.batch_size, seed=config.seed, device=device,
        shard=(world.rank, world.world_size), start_share=data.start_window_share,
        episode_stride=data.episode_stride, policy_targets=data.policy_targets,
    )  # fmt: skip
    model_config = model_config_for(config, task, store)
    scoring = scoring_for(model_config, config.scoring)
    model = HeadlessTransformer(model_config).to(device)
    # Same seed on every rank, so the replicas start equal (DDP also broadcasts rank 0's weights).
    trained = model if world.world_size == 1 else torch.nn.parallel.DistributedDataParallel(model)
    if runtime.compile:
        trained = torch.compile(trained)  # evaluation decodes with the uncompiled `model`
    torch.manual_seed(config.seed + world.rank)  # independent dropout masks per rank
    state = TrainingState.new(model, sampler, config, device)
    if checkpoint is not None:
        if checkpoint["model_config"] != dataclasses.asdict(model_config):
            raise CheckpointError(f"{checkpoint_path}: its model config differs from this run's (see config.json)")
        state.load_state_dict(checkpoint, checkpoint_path)
        del checkpoint
        if world.is_main:
            print(f"resuming {checkpoint_path} at step {state.step}")
    checkpointer = Checkpointer(config, model_config, checkpoint_path)
    checkpointer.saved_step = state.step
    if state.step and config.evaluation.keep_best:
        checkpointer.adopt_later_best(state)
    resumed_seconds = state.train_seconds

    log = evaluation = None
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", to_jsonable(config))
        parameters = f"{model.num_parameters():,} parameters on {device} ({dtype})"
        processes = f" x {world.world_size} processes" if world.world_size > 1 else ""
        print(f"{config.run_name}: {parameters}{processes}, {store.num_instances} histories from {store.path}")
        with clock.paused():  # the baselines' rollouts are evaluation
            evaluation = InContextEvaluation(config, task, store.horizon, scoring)
        log = RunLog(config, run_dir, task, state.step, optim.batch_size * (data.seq_len + store.max_actions))

    model.train()
    try:
        while state.step < total_steps:
            data_start = time.perf_counter()
            batch = sampler.sample()
            if log is not None:
                log.data_seconds += time.perf_counter() - data_start
            loss, logits, grad_norm, finite = train_step(
                state, trained, batch, config, scoring, sampler.shard_rows, dtype
            )
            if not finite:
                # Stopped before the optimizer spread NaN into the weights; the last checkpoint stays.
                what = non_finite_values(loss, grad_norm)
                raise TrainingDiverged(
                    divergence_message(state.step + 1, what, config, checkpoint_path, checkpointer.saved_step)
                )
            step = state.step
            if log is None:
                continue
            log.bar.update()
            if step % runtime.log_every == 0 or step == total_steps:
                log.training(step, loss, logits, batch, grad_norm, state.scheduler.get_last_lr()[0])
            state.train_seconds = clock.seconds(before=resumed_seconds)
            # Evaluation first: a run stopped during it resumes from the checkpoint before and
            # evaluates this step again, and this step's checkpoint records any new best.
            if evaluation.suites and (
                (config.evaluation.eval_every and step % config.evaluation.eval_every == 0) or step == total_steps
            ):
                checkpointer.check_finite(state)
                with clock.paused():
                    start = time.perf_counter()
                    results = evaluation.run(state.acting_model)
                    log.evaluation(results, step, time.perf_counter() - start, state.train_seconds)
                    if step == total_steps:  # the end-of-run evaluation, per instance
                        evaluation.save(run_dir, results, step, time.perf_counter() - start)
                    if config.evaluation.keep_best:
                        checkpointer.keep_if_best(state, results)
                log.restart_clock(step)
            if step % runtime.checkpoint_every == 0 or step == total_steps:
                checkpointer.save(state)
    finally:
        if log is not None:
            log.close()
    if world.is_main:
        print(
            f"{config.run_name}: checkpoint {checkpoint_path}; TensorBoard events in {run_dir} "
            f"(tensorboard --logdir {run_dir})\n"
            f"evaluate it: python -m headless_ad evaluate --checkpoint {checkpoint_path}"
        )
        if config.evaluation.keep_best:
            best, suite = state.best, config.evaluation.keep_best
            print(
                f"best on {suite}: step {best['step']} ({best['score']:.3f}) in {checkpointer.best_path}"
                if best is not None
                else f"--keep-best: no evaluation on {suite} gave a finite score, so no best.pt was written"
            )
    world.barrier()
    del trained  # DDP holds the process group; drop it before leaving the group
    world.close()
    return checkpoint_path
