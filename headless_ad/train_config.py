"""What a training run is: every option of `train`, their checks, and the run's recorded forms
(config.json, the TensorBoard config table, the default run name)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import tyro

from headless_ad.action_embeddings import ActionScoring
from headless_ad.collect import CollectConfig
from headless_ad.hardware import resolve_device
from headless_ad.losses import LossKind
from headless_ad.methods import check_indexed_training
from headless_ad.model import ModelConfig
from headless_ad.policy import TemperatureSchedule, check_schedule_fits
from headless_ad.runs import check_run_name
from headless_ad.tasks import get_task
from headless_ad.tasks.base import check_observation_size


@dataclass
class TrainConfig:
    task: str = "bandit"
    """Environment family, or a task of your own (package.module:Task; docs/own_environment.md)."""
    run_name: str = ""
    """Outputs go to runs/<run_name>/ (TensorBoard events, checkpoint.pt, config.json); default:
    <task>-s<seed>-<date>-<time>, new for every start (--resume needs the name)."""
    seed: int = 0
    """Seeds the weights, the window sampler, the action embeddings and evaluation; the histories
    have their own --collect.seed."""
    # Data: which histories, and how training windows are cut from them.
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Which histories to train on; collected first if the store does not exist yet."""
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
    permute_actions: tyro.conf.FlagCreatePairsOff[bool] = False
    """With --model.head indexed: map each training window's actions to a fresh random permutation
    of the head's indices (AD-permuted, the paper's motivating experiment)."""
    mixed_action_counts: tyro.conf.FlagCreatePairsOff[bool] = False
    """With --model.head indexed: allow histories with different action counts (AD trains per
    action set otherwise, and such a store fails at once)."""
    # Model, and how its outputs score the actions.
    model: ModelConfig = field(default_factory=ModelConfig)
    scoring: ActionScoring = field(default_factory=ActionScoring)
    """How output vectors score actions (similarity, temperature tau, optional log-K scale)."""
    # Optimisation.
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
    label_smoothing: float = 0.0
    """Share of the target's probability spread evenly over the available actions (cross-entropy
    and InfoNCE; 0 = off)."""
    # Evaluation during training (also `evaluate`'s defaults for the sampling temperature).
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
    # Runtime: where and how fast it computes, how often it logs and saves.
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
    log_every: int = 25
    """Optimizer steps between TensorBoard scalars and progress updates."""
    checkpoint_every: int = 500
    """Optimizer steps between checkpoints (one file, replaced atomically; also written at the end)."""
    resume: bool = False
    """Continue runs/<run_name>/checkpoint.pt."""

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
