"""Train Headless-AD on a history store: fresh random action embeddings every batch, InfoNCE over
the available actions, periodic in-context evaluation, TensorBoard and atomic checkpoints."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import tyro
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
from headless_ad.collect import CollectConfig, collect, open_store
from headless_ad.episode_gifs import early_and_late_frames
from headless_ad.evaluate import (
    TemperatureSchedule,
    check_schedule_fits,
    curves_figure,
    evaluate_in_context,
    format_table,
    metric_tag,
    run_baselines,
)
from headless_ad.files import atomic_write_json, check_writable_folder, remove_stale_temporaries
from headless_ad.hardware import resolve_device, resolve_precision
from headless_ad.histories import WindowSampler
from headless_ad.locks import exclusive_lock
from headless_ad.losses import LossKind, headless_loss
from headless_ad.methods import check_indexed_training
from headless_ad.model import HeadlessTransformer, ModelConfig
from headless_ad.progress import progress_bar
from headless_ad.results import evaluation_name, save_evaluation
from headless_ad.runs import (
    RUNS,
    TrainingDiverged,
    check_run_directory,
    check_run_name,
    missing_resume_state,
    resume_changes,
)
from headless_ad.tasks import get_task
from headless_ad.tasks.base import check_observation_size


@dataclass
class TrainConfig:
    task: str = "bandit"
    """Environment family, or a task of your own (package.module:Task; docs/own_environment.md)."""
    run_name: str = ""
    """Outputs go to runs/<run_name>/ (TensorBoard events, checkpoint.pt, config.json); default:
    <task>-s<seed>-<date>-<time>, new for every start (--resume needs the name)."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Which histories to train on; collected first if the store does not exist yet."""
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 300
    """Steps per training window (the context the model acts with)."""
    start_window_share: float = 0.0
    """Share of training windows cut at the start of a history rather than at a uniform offset:
    evaluation begins with an empty context, which a uniform start into histories much longer
    than seq_len almost never shows (Darkroom: 1 window in 3,800)."""
    episode_stride: int = 1
    """Episodic tasks: train on every k-th episode of a history (a random residue r mod k per
    window), so a window shows k times the source's progress and the distilled learner is pushed
    to improve faster than its source."""
    batch_size: int = 16
    """Training windows per optimizer step (the global batch: under torchrun it is split over ranks)."""
    learning_rate: float = 3e-3
    """Peak AdamW learning rate, reached after --warmup-steps and decayed on a cosine."""
    weight_decay: float = 0.01
    """AdamW weight decay of the matrices (biases, norms and vectors are not decayed)."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW's moving-average coefficients (beta1 beta2)."""
    warmup_steps: int = 100
    """Optimizer steps of linear learning-rate warm-up; at most --total-steps."""
    total_steps: int = 3_000
    """Optimizer steps; the learning rate decays to 10% of its peak on a cosine."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value before every step."""
    ema_decay: float = 0.0
    """Keep an exponential moving average of the weights with this decay (e.g. 0.998 averages
    about the last 500 steps); evaluation and `evaluate` then use the averaged weights. 0 = off."""
    loss: LossKind = "infonce"
    """infonce: cross-entropy over the available actions' scores (the paper's); mse: regress the
    output onto the taken action's embedding (the paper's ablation)."""
    scoring: ActionScoring = field(default_factory=ActionScoring)
    """How output vectors score actions (similarity, temperature tau, optional log-K scale)."""
    seed: int = 0
    """Seeds the weights, the window sampler, the action embeddings and evaluation; the histories
    have their own --collect.seed."""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu, cuda, cuda:1, ..."""
    threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Autocast dtype for training (weights and optimizer stay fp32). auto: bf16 on a GPU that
    supports it and on CPUs with native bf16 instructions (avx512_bf16 / amx_bf16), else fp32."""
    compile: bool = False
    """torch.compile the training forward/backward (worth it on a GPU; on CPU the first steps
    spend about half a minute compiling)."""
    eval_every: int = 500
    """Optimizer steps between in-context evaluations (0 = only at the end)."""
    eval_suites: tuple[str, ...] = ("all_new", "num_50")
    """Suites of the task evaluated during training (`python -m headless_ad evaluate --help` and
    docs/ list each task's suites; bandits also take specs such as arms=50,instances=200)."""
    eval_instances: int = 100
    """Instances per evaluation suite."""
    eval_horizon: int = 0
    """Steps per evaluation rollout; 0 = the histories' horizon. The model acts with a sliding
    context, so it can be evaluated for longer than the histories it learned from."""
    sample_temperature: float = 1.0
    """The model's sampled policy at evaluation is softmax(logits / sample_temperature) (unlike
    --scoring.temperature, which also scales the scores in training); saved
    with the checkpoint as `evaluate`'s default."""
    final_sample_temperature: float | None = None
    """With `anneal_episodes`: the sampling temperature each instance reaches after that many episodes."""
    anneal_episodes: int = 0
    """Anneal the sampling temperature linearly over each evaluation instance's first episodes
    (episodic tasks only; 0: constant). Saved with the checkpoint as `evaluate`'s default."""
    eval_pictures: bool = False
    """Tasks that can draw their instances (darkroom, minigrid): pictures of the model's first and last
    episodes on each evaluation suite's first instance, in TensorBoard (eval/<suite>/episodes_sample)."""
    log_every: int = 25
    """Optimizer steps between TensorBoard scalars and progress updates."""
    checkpoint_every: int = 500
    """Optimizer steps between checkpoints (one file, replaced atomically; also written at the end)."""
    resume: bool = False
    """Continue runs/<run_name>/checkpoint.pt."""
    label_smoothing: float = 0.0
    """Share of the target's probability spread evenly over the available actions (cross-entropy
    and InfoNCE; 0 = off)."""
    permute_actions: tyro.conf.FlagCreatePairsOff[bool] = False
    """With --model.head indexed: map each training window's actions to a fresh random permutation
    of the head's indices (AD-permuted, the paper's motivating experiment)."""
    mixed_action_counts: tyro.conf.FlagCreatePairsOff[bool] = False
    """With --model.head indexed: allow histories with different action counts (AD trains per
    action set otherwise, and such a store fails at once)."""

    @property
    def temperature_schedule(self) -> TemperatureSchedule:
        """Evaluation's sampling temperature (constructing it checks the three fields)."""
        return TemperatureSchedule(self.sample_temperature, self.final_sample_temperature, self.anneal_episodes)

    def validate(self) -> None:
        task = get_task(self.task)
        if self.collect.task != self.task:
            raise ValueError(f"--collect.task {self.collect.task!r} differs from --task {self.task!r}")
        checks = [
            (self.seq_len >= 1, f"--seq-len must be >= 1, got {self.seq_len}"),
            (
                self.seq_len <= self.collect.horizon,
                f"--seq-len {self.seq_len} is longer than the histories (--collect.horizon {self.collect.horizon})",
            ),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.collect.threads >= 0, f"--collect.threads must be >= 0, got {self.collect.threads}"),
            (
                self.collect.num_instances >= 1 and self.collect.horizon >= 1,
                "--collect.num-instances and --collect.horizon must be >= 1",
            ),
            (
                0 <= self.start_window_share <= 1,
                f"--start-window-share must be in [0, 1], got {self.start_window_share}",
            ),
            (self.episode_stride >= 1, f"--episode-stride must be >= 1, got {self.episode_stride}"),
            (self.learning_rate > 0, f"--learning-rate must be > 0, got {self.learning_rate}"),
            (0 <= self.ema_decay < 1, f"--ema-decay must be in [0, 1), got {self.ema_decay}"),
            (self.scoring.temperature > 0, f"--scoring.temperature must be > 0, got {self.scoring.temperature}"),
            (self.total_steps >= 1, f"--total-steps must be >= 1, got {self.total_steps}"),
            (
                0 <= self.warmup_steps <= self.total_steps,
                f"--warmup-steps {self.warmup_steps} must be in [0, --total-steps {self.total_steps}]",
            ),
            (
                self.scoring.similarity in ("dot", "cosine", "euclidean"),
                "--scoring.similarity must be dot, cosine or euclidean",
            ),
            (self.log_every >= 1, f"--log-every must be >= 1, got {self.log_every}"),
            (self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"),
            (self.eval_every >= 0, f"--eval-every must be >= 0, got {self.eval_every}"),
            (self.eval_instances >= 1, f"--eval-instances must be >= 1, got {self.eval_instances}"),
            (self.eval_horizon >= 0, f"--eval-horizon must be >= 0, got {self.eval_horizon}"),
            (0 <= self.model.dropout < 1, f"--model.dropout must be in [0, 1), got {self.model.dropout}"),
            (self.model.n_layers >= 1, f"--model.n-layers must be >= 1, got {self.model.n_layers}"),
            (
                self.model.n_heads >= 1 and self.model.d_model % (2 * self.model.n_heads) == 0,
                f"--model.d-model {self.model.d_model} must split into --model.n-heads {self.model.n_heads} "
                "heads of even width",
            ),
            (self.loss in ("infonce", "mse"), f"--loss must be infonce or mse, got {self.loss!r}"),
            (math.isfinite(self.learning_rate), f"--learning-rate must be finite, got {self.learning_rate}"),
            (
                math.isfinite(self.grad_clip) and self.grad_clip > 0,
                f"--grad-clip must be finite and > 0 (the largest gradient norm kept), got {self.grad_clip}",
            ),
            (self.threads >= 0, f"--threads must be >= 0, got {self.threads}"),
            (0 <= self.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {self.label_smoothing}"),
            (
                self.loss != "mse" or self.scoring.similarity == "euclidean",
                "--loss mse regresses onto the target's embedding: select the nearest action with "
                "--scoring.similarity euclidean",
            ),
            (
                self.model.head == "headless" or self.loss == "infonce",
                "--model.head indexed is trained with cross-entropy: --loss infonce",
            ),
            (
                self.model.head == "indexed" or not (self.permute_actions or self.mixed_action_counts),
                "--permute-actions and --mixed-action-counts are for --model.head indexed",
            ),
            (self.model.action_dim >= 0, f"--model.action-dim must be >= 0, got {self.model.action_dim}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.run_name:  # (empty: a new name per start)
            check_run_name(self.run_name)
        resolve_device(self.device)
        check_schedule_fits(self.temperature_schedule, task)
        if self.eval_pictures and not task.can_render:
            raise ValueError(f"--eval-pictures: task {task.name!r} cannot draw its instances")
        # Builds (and so checks) the training suite, e.g. --collect.train-suite, before any collection.
        train_suite = task.train_suite(
            self.collect.num_instances, self.collect.horizon, self.collect.seed, self.collect.train_suite
        )
        if self.model.head == "indexed":
            counts = task.make_env(train_suite).action_mask.sum(axis=1)
            source = f"the training suite ({self.collect.train_suite or 'the task default'})"
            check_indexed_training(
                counts, self.model.num_actions, self.permute_actions, self.mixed_action_counts, source
            )
        for name in self.eval_suites:
            suite = task.parse_suite(
                name, self.eval_instances, self.eval_horizon or self.collect.horizon, self.collect.seed
            )
            check_observation_size(task, suite, task.observation_size(train_suite), f"--eval-suites {name!r}")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun launch (rank 0 of 1 without one)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group. Call it once nothing holds the group (DDP does): a group
        still alive at interpreter exit can abort the process from gloo's threads."""
        if self.world_size > 1 and torch.distributed.is_initialized():
            gc.collect()  # DDP's reducer sits in reference cycles
            torch.distributed.destroy_process_group()


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group torchrun describes in the environment: gloo on CPU, NCCL on GPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        # Rank 0 alone collects and evaluates while the others wait: allow it time.
        torch.distributed.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=2)
        )
    return Distributed(torch.distributed.get_rank(), world_size, local_rank)


def lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def config_markdown(config: TrainConfig) -> str:
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                walk(f"{prefix}{f.name}.", getattr(value, f.name))
        else:
            flat[prefix.rstrip(".")] = value

    walk("", config)
    return "| option | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in flat.items())


def to_jsonable(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def default_run_name(config: TrainConfig) -> str:
    """Unique per start, as CleanRL's are: a second `train` never collides with the first by default."""
    return f"{get_task(config.task).name}-s{config.seed}-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def load_checkpoint_to_resume(config: TrainConfig, checkpoint_path: Path) -> dict[str, Any]:
    """The checkpoint `--resume` continues, after checking that it holds the whole training state
    and that the options asked for either may change on resume (they are applied, and recorded in
    config.json) or equal the checkpoint's; anything else is refused in one line."""
    checkpoint = load_checkpoint(checkpoint_path, expected_task=config.task)
    missing = missing_resume_state(checkpoint)
    if missing:
        raise CheckpointError(f"{checkpoint_path}: holds no {', '.join(missing)} state, so training cannot resume")
    if config.total_steps < checkpoint["step"]:
        raise ValueError(
            f"--total-steps {config.total_steps} is below the step of {checkpoint_path} ({checkpoint['step']})"
        )
    applied, refused = resume_changes(checkpoint["config"], to_jsonable(config), to_jsonable(TrainConfig()))
    if refused:
        raise ValueError(
            f"--resume: {checkpoint_path} was trained with other values of options that shape the optimisation "
            f"or the data ({'; '.join(refused)}); resume without changing them, or start a new --run-name"
        )
    if applied and checkpoint["step"] < config.total_steps:
        print(f"resuming with changed {'; '.join(applied)} (recorded in config.json)")
    return checkpoint


def non_finite_values(loss: torch.Tensor, grad_norm: torch.Tensor) -> str:
    return "; ".join(
        f"{name} is {value.item()}"
        for name, value in (("the loss", loss.detach()), ("the gradient norm", grad_norm))
        if not bool(torch.isfinite(value).item())
    )


def divergence_message(step: int, what: str, config: TrainConfig, checkpoint_path: Path, saved_step: int) -> str:
    kept = f"{checkpoint_path} keeps step {saved_step}" if saved_step else "no checkpoint was written"
    return (
        f"training diverged at step {step}: {what}; stopped, {kept}. "
        f"Lower --learning-rate (now {config.learning_rate:g}) or --grad-clip (now {config.grad_clip:g})"
    )


def save_final_evaluation(
    config: TrainConfig, task: Any, run_dir: Path, results: list, step: int, wall_seconds: float
) -> None:
    horizon = config.eval_horizon or config.collect.horizon
    selection = ("argmax", "sample")
    name = evaluation_name(
        step, config.eval_suites, config.seed + 1, config.eval_instances, horizon, selection,
        config.temperature_schedule.describe(), prefix="train-",
    )  # fmt: skip
    description = {
        "checkpoint": str(run_dir / "checkpoint.pt"),
        "step": step,
        "train_config": to_jsonable(config),
        "evaluation": {
            "suites": list(config.eval_suites), "seed": config.seed + 1, "num_instances": config.eval_instances,
            "horizon": horizon, "selection": list(selection),
            "sample_temperature": config.temperature_schedule.describe(),
        },
        "wall_seconds": wall_seconds,
    }  # fmt: skip
    # The same checkpoint step and settings give the same evaluation: a re-run may replace it.
    save_evaluation(run_dir / "evaluations" / name, task, results, description, overwrite=True)


def train(config: TrainConfig) -> Path:
    """Train (or resume) a run; returns the checkpoint path.

    Under torchrun every rank computes its share of each global batch (`batch_size` is global)
    and DistributedDataParallel averages the gradients; rank 0 alone collects, logs, evaluates
    and checkpoints.
    """
    config.validate()
    if not config.run_name:
        if config.resume:
            raise ValueError("--resume needs the --run-name of the run to continue")
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ValueError("under torchrun pass --run-name (every rank must agree on the run)")
        config = dataclasses.replace(config, run_name=default_run_name(config))
    run_dir = RUNS / config.run_name
    checkpoint_path = run_dir / "checkpoint.pt"
    if config.resume and not checkpoint_path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
    if not config.resume and checkpoint_path.exists():
        raise FileExistsError(f"{checkpoint_path} exists: pass --resume to continue it or choose another --run-name")
    check_run_directory(run_dir, config.resume)
    check_writable_folder(run_dir, "run outputs")
    # One writer per run (torchrun: rank 0 writes for all).
    with exclusive_lock(run_dir, "run") if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext():
        return train_locked(config, run_dir, checkpoint_path)


def train_locked(config: TrainConfig, run_dir: Path, checkpoint_path: Path) -> Path:
    """`train`, holding the run's lock."""
    task = get_task(config.task)
    checkpoint = None
    if config.resume:
        checkpoint = load_checkpoint_to_resume(config, checkpoint_path)
        if checkpoint["step"] >= config.total_steps:
            print(
                f"{checkpoint_path} is already at step {checkpoint['step']} of {config.total_steps}: nothing to train"
            )
            return checkpoint_path
    for stale in remove_stale_temporaries(run_dir):
        print(f"removed {stale}, left by a killed writer")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    world = init_distributed(resolve_device(config.device))
    device = resolve_device(config.device, world.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if config.batch_size % world.world_size:
        raise ValueError(f"batch_size {config.batch_size} does not split over {world.world_size} processes")
    dtype = resolve_precision(config.precision, device)
    torch.manual_seed(config.seed)

    if world.is_main:
        collect(config.collect)
    world.barrier()
    store = open_store(config.collect)
    sampler = WindowSampler(
        store, config.seq_len, config.batch_size, seed=config.seed, device=device,
        shard=(world.rank, world.world_size), start_share=config.start_window_share,
        episode_stride=config.episode_stride,
    )  # fmt: skip
    model_config = dataclasses.replace(
        config.model,
        max_steps=config.seq_len,
        observation_kind=task.observation_kind,
        observation_size=task.observation_size(
            task.train_suite(
                config.collect.num_instances, config.collect.horizon, config.collect.seed, config.collect.train_suite
            )
        ),
    )
    if model_config.head == "indexed":
        counts = np.asarray(store.action_mask).sum(axis=1)
        check_indexed_training(
            counts, model_config.num_actions, config.permute_actions, config.mixed_action_counts, str(store.path)
        )
        if not model_config.num_actions:
            model_config = dataclasses.replace(model_config, num_actions=store.max_actions)
    scoring = scoring_for(model_config, config.scoring)
    model = HeadlessTransformer(model_config).to(device)
    # Same seed on every rank, so the replicas start equal (DDP also broadcasts rank 0's weights).
    trained = model if world.world_size == 1 else torch.nn.parallel.DistributedDataParallel(model)
    if config.compile:
        trained = torch.compile(trained)  # evaluation decodes with the uncompiled `model`
    torch.manual_seed(config.seed + world.rank)  # independent dropout masks per rank
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=config.betas,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config.warmup_steps, config.total_steps)
    )
    embedding_generator = torch.Generator(device=device).manual_seed(config.seed)
    ema = (
        torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay)
        )
        if config.ema_decay > 0
        else None
    )
    step = saved_step = 0
    if checkpoint is not None:
        if checkpoint["model_config"] != dataclasses.asdict(model_config):
            raise CheckpointError(f"{checkpoint_path}: its model config differs from this run's (see config.json)")
        if ema is not None and checkpoint.get("ema_model") is None:
            raise CheckpointError(f"{checkpoint_path}: was trained without --ema-decay, cannot resume with it")
        try:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            embedding_generator.set_state(checkpoint["embedding_generator"].to(embedding_generator.get_state().device))
            sampler.rng.bit_generator.state = checkpoint["sampler_rng"]
            # RNG states are CPU byte tensors, whatever map_location moved the checkpoint to.
            torch.set_rng_state(checkpoint["torch_rng"].cpu())
            if device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(checkpoint["cuda_rng"].cpu(), device)
            if ema is not None:
                ema.module.load_state_dict(checkpoint["ema_model"])
                ema.n_averaged.fill_(checkpoint["ema_steps"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise CheckpointError(
                f"{checkpoint_path}: cannot resume from its training state ({type(error).__name__}: {error})"
            ) from None
        step = saved_step = checkpoint["step"]
        del checkpoint
        if world.is_main:
            print(f"resuming {checkpoint_path} at step {step}")

    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "config.json", to_jsonable(config))
        writer = SummaryWriter(run_dir)
        writer.add_text("config", config_markdown(config), global_step=step)
        parameters = f"{model.num_parameters():,} parameters on {device} ({dtype})"
        processes = f" x {world.world_size} processes" if world.world_size > 1 else ""
        print(f"{config.run_name}: {parameters}{processes}, {store.num_instances} histories from {store.path}")
        suites = {
            name: task.parse_suite(
                name, config.eval_instances, config.eval_horizon or store.horizon, config.collect.seed
            )
            for name in config.eval_suites
        }
        baselines = {name: run_baselines(task, suite, seed=config.seed + 1) for name, suite in suites.items()}

    def save() -> None:
        nonlocal saved_step
        weights = {"model": model.state_dict(), "ema_model": ema.module.state_dict() if ema is not None else {}}
        bad = [f"{key}.{name}" for key, state in weights.items() for name in non_finite_tensors(state)]
        if bad:  # a checkpoint that cannot act is never written over a good one
            bar.close()
            writer.close()
            what = f"non-finite weights ({bad[0]})"
            raise TrainingDiverged(divergence_message(step, what, config, checkpoint_path, saved_step))
        atomic_torch_save(
            {
                "version": CHECKPOINT_VERSION,
                "task": config.task,
                "config": to_jsonable(config),
                "model_config": dataclasses.asdict(model_config),
                "model": model.state_dict(),
                # The weights `evaluate` uses: the moving average when there is one.
                "ema_model": ema.module.state_dict() if ema is not None else None,
                "ema_steps": int(ema.n_averaged) if ema is not None else 0,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "embedding_generator": embedding_generator.get_state(),
                "sampler_rng": sampler.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "step": step,
            },
            checkpoint_path,
        )
        saved_step = step

    def evaluate_and_log() -> None:
        if not suites:
            return
        start = time.perf_counter()
        evaluated = ema.module if ema is not None else model
        results = evaluate_in_context(
            task, evaluated, suites, baselines, ("argmax", "sample"), scoring, config.seed + 1,
            config.temperature_schedule,
        )  # fmt: skip
        for result in results:
            for selection in ("argmax", "sample"):
                writer.add_scalar(
                    f"eval/{result.suite}/normalized_{selection}", result.normalized(f"model_{selection}"), step
                )
                for name, value in result.extra_metrics(f"model_{selection}").items():
                    writer.add_scalar(f"eval/{result.suite}/{name.replace(' ', '_')}_{selection}", value, step)
            # The raw measure beside the normalized score, baselines included (flat reference lines).
            for agent in result.rollouts:
                writer.add_scalar(f"eval/{result.suite}/{metric_tag(task)}/{agent}", result.metric(agent), step)
            writer.add_figure(f"eval/{result.suite}/curves", curves_figure(result), step)
            if config.eval_pictures and task.can_render:
                # The first instance's first and last episodes, one image per step.
                frames = early_and_late_frames(task, result.spec, result.rollouts["model_sample"], instance=0)
                writer.add_images(f"eval/{result.suite}/episodes_sample", np.stack(frames), step, dataformats="NHWC")
        writer.add_scalar("perf/eval_seconds", time.perf_counter() - start, step)
        if step == config.total_steps:  # the end-of-run evaluation, per instance, as `evaluate` saves it
            save_final_evaluation(config, task, run_dir, results, step, time.perf_counter() - start)
        agents = [*task.baselines, "model_argmax", "model_sample"]
        tqdm.write(f"step {step}: in-context evaluation\n{format_table(results, agents)}")

    model.train()
    bar = progress_bar(config.total_steps, config.run_name, initial=step) if world.is_main else None
    tokens_per_step = config.batch_size * (config.seq_len + store.max_actions)
    last_time, last_step, data_seconds = time.perf_counter(), step, 0.0
    while step < config.total_steps:
        data_start = time.perf_counter()
        batch = sampler.sample()
        data_seconds += time.perf_counter() - data_start
        # Drawn for the global batch on every rank (same generator), each keeping its own rows.
        embeddings = action_vectors(
            model_config, config.batch_size, store.max_actions, embedding_generator, device, config.permute_actions
        )[sampler.shard_rows]
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
            outputs.float(), embeddings, batch.action_mask, batch.targets,
            scoring, config.loss, config.label_smoothing,
        )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        if not bool((torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)).item()):
            # Stop before the optimizer spreads NaN into the weights; the last checkpoint stays.
            if world.is_main:
                bar.close()
                writer.close()
            what = non_finite_values(loss, grad_norm)
            raise TrainingDiverged(divergence_message(step + 1, what, config, checkpoint_path, saved_step))
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        step += 1

        if not world.is_main:
            continue
        bar.update()
        if step % config.log_every == 0 or step == config.total_steps:
            now = time.perf_counter()
            steps_done = step - last_step
            accuracy = (logits.argmax(-1) == batch.targets).float().mean()
            writer.add_scalar("train/loss", loss.item(), step)
            writer.add_scalar("train/accuracy", accuracy.item(), step)
            writer.add_scalar("train/grad_norm", grad_norm.item(), step)
            writer.add_scalar("train/learning_rate", scheduler.get_last_lr()[0], step)
            writer.add_scalar("train/tokens_seen", step * tokens_per_step, step)
            writer.add_scalar("perf/steps_per_second", steps_done / (now - last_time), step)
            writer.add_scalar("perf/tokens_per_second", steps_done * tokens_per_step / (now - last_time), step)
            writer.add_scalar("perf/data_fraction", data_seconds / (now - last_time), step)
            status = f"loss {loss.item():.4f} acc {accuracy.item():.3f} lr {scheduler.get_last_lr()[0]:.2e}"
            if bar.disable:  # a file or pipe gets log lines; a terminal the bar
                print(
                    f"step {step}/{config.total_steps} {status} {steps_done / (now - last_time):.2f} steps/s",
                    flush=True,
                )
            else:
                bar.set_postfix_str(status, refresh=False)
            last_time, last_step, data_seconds = time.perf_counter(), step, 0.0
        if step % config.checkpoint_every == 0 or step == config.total_steps:
            save()
        if (config.eval_every and step % config.eval_every == 0) or step == config.total_steps:
            evaluate_and_log()
            last_time = time.perf_counter()
    if world.is_main:
        bar.close()
        writer.close()
        print(
            f"{config.run_name}: checkpoint {checkpoint_path}; TensorBoard events in {run_dir} "
            f"(tensorboard --logdir {run_dir})\n"
            f"evaluate it: python -m headless_ad evaluate --checkpoint {checkpoint_path}"
        )
    world.barrier()
    del trained  # DDP holds the process group; drop it before leaving the group
    world.close()
    return checkpoint_path
