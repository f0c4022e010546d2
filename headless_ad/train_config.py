"""What a training run is: every option of `train`, grouped in sections, their checks, and the
run's recorded forms (config.json, the TensorBoard config table, the default run name).

The sections (data, optimisation, evaluation, runtime) are nested dataclasses so that
`train --help` shows each under a heading of its own, but their flags carry no prefix
(`--batch-size`, not `--optimisation.batch-size`): an option's name is its flag's, whatever
section holds it (`option_values`, `replace_options`). Runs written before the sections existed
saved a flat config; `nested_config` reads either form.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import tyro

from headless_ad.action_embeddings import ActionScoring
from headless_ad.collect import CollectConfig
from headless_ad.hardware import check_compiler, resolve_device
from headless_ad.losses import LossKind
from headless_ad.methods import check_indexed_training
from headless_ad.model import ModelConfig
from headless_ad.policy import Selection, TemperatureSchedule, check_schedule_fits
from headless_ad.runs import check_run_name, flatten
from headless_ad.tasks import Task, get_task
from headless_ad.tasks.base import check_observation_size


@dataclass
class DataConfig:
    """How training windows are cut from the histories."""

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
    policy_targets: tyro.conf.FlagCreatePairsOff[bool] = False
    """Learn the source's action distribution where its histories record it (epsilon-greedy
    Q-learning: the greedy action with weight 1 - epsilon, epsilon spread evenly over the available
    actions) instead of the one action drawn from it: the same expected target, less noise. A
    store that does not record it fails at once."""


@dataclass
class OptimisationConfig:
    """How the weights are fitted: AdamW on a warm-up and cosine schedule, and the loss."""

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


@dataclass
class EvaluationConfig:
    """In-context evaluation during training; its sampling temperature is also `evaluate`'s default."""

    eval_every: int = 500
    """Optimizer steps between in-context evaluations (0 = only at the end)."""
    eval_suites: tuple[str, ...] = ("all_new", "num_50")
    """Suites of the task evaluated during training (`python -m headless_ad evaluate --help` and
    docs/ list each task's suites; bandits also take specs such as arms=50,instances=200)."""
    eval_instances: int = 100
    """Instances per evaluation suite."""
    eval_seed: int = 2
    """Seed of the in-training evaluations' rollouts (reward draws, sampling), the same for every
    training seed so that runs' curves average over seeds; `evaluate` defaults to 1, so in-training
    numbers never repeat a final evaluation's draws."""
    eval_selection: tuple[Selection, ...] = ("argmax", "sample")
    """How the model picks its action in in-training evaluations: argmax, sample, or both (each is
    a rollout of its own; where greedy play is known to loop, sample alone halves the cost)."""
    keep_best: str = ""
    """One of --eval-suites: after each in-training evaluation, also save the run to best.pt when the
    model's normalized score on this suite (sampled policy when evaluated, else greedy) beats every
    earlier one. Pick a validation suite (a seed no reported suite uses), then evaluate best.pt like
    checkpoint.pt. Empty: off."""
    eval_horizon: int = 0
    """Steps per evaluation rollout; 0 = the histories' horizon. The model acts with a sliding
    context, so it can be evaluated for longer than the histories it learned from."""
    sample_temperature: float = 1.0
    """The model's sampled policy at evaluation is softmax(logits / sample_temperature) (unlike
    --scoring.temperature, which also scales the scores in training); saved
    with the checkpoint as `evaluate`'s default."""
    final_sample_temperature: float | None = None
    """With `anneal_episodes` or `anneal_steps`: the sampling temperature each instance reaches after
    that many episodes or steps."""
    anneal_episodes: int = 0
    """Anneal the sampling temperature linearly over each evaluation instance's first episodes
    (episodic tasks only; 0: constant). Saved with the checkpoint as `evaluate`'s default."""
    anneal_steps: int = 0
    """Anneal it instead over each instance's first steps (any task, bandits too; 0: constant).
    Saved with the checkpoint as `evaluate`'s default."""
    sample_min_p: float = 0.0
    """Min-p sampling: before the temperature applies, drop the actions less likely than this
    share of the most likely one (0: keep all). Cuts the tail of unlikely actions, which grows with
    the action count, without sharpening the likely ones. Saved with the checkpoint as `evaluate`'s default."""
    eval_pictures: bool = False
    """Tasks that can draw their instances (darkroom, minigrid): pictures of the model's first and last
    episodes on each evaluation suite's first instance, in TensorBoard (eval/<suite>/episodes_sample)."""

    @property
    def temperature_schedule(self) -> TemperatureSchedule:
        """Evaluation's sampling temperature (constructing it checks the four fields)."""
        return TemperatureSchedule(
            self.sample_temperature,
            self.final_sample_temperature,
            self.anneal_episodes,
            self.anneal_steps,
            self.sample_min_p,
        )


@dataclass
class RuntimeConfig:
    """Where and how fast the run computes, how often it logs and saves, and whether it resumes."""

    device: str = "auto"
    """auto (cuda if available, else cpu), cpu, cuda, cuda:1, ..."""
    threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Autocast dtype for training (weights and optimizer stay fp32). auto: bf16 on a GPU that
    supports it and on CPUs with native bf16 instructions (avx512_bf16 / amx_bf16), else fp32."""
    compile: bool = False
    """torch.compile the training forward/backward: 2.2x on a GPU, 1.29-1.38x for the CPU presets
    on 2 cores (docs/performance.md). On the CPU it needs a C++ compiler, and the first steps
    spend 10-45 s compiling."""
    log_every: int = 25
    """Optimizer steps between TensorBoard scalars and progress updates."""
    checkpoint_every: int = 500
    """Optimizer steps between checkpoints (one file, replaced atomically; also written at the end)."""
    resume: bool = False
    """Continue runs/<run_name>/checkpoint.pt."""


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
    collect: CollectConfig = field(default_factory=CollectConfig)
    """Which histories to train on; collected first if the store does not exist yet."""
    data: tyro.conf.OmitArgPrefixes[DataConfig] = field(default_factory=DataConfig)
    """How training windows are cut from the histories."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The transformer: its size, its inputs, and its head (headless, or AD's indexed one)."""
    scoring: ActionScoring = field(default_factory=ActionScoring)
    """How output vectors score actions (similarity, temperature tau, optional log-K scale)."""
    optimisation: tyro.conf.OmitArgPrefixes[OptimisationConfig] = field(default_factory=OptimisationConfig)
    """How the weights are fitted: AdamW on a warm-up and cosine schedule, and the loss."""
    evaluation: tyro.conf.OmitArgPrefixes[EvaluationConfig] = field(default_factory=EvaluationConfig)
    """In-context evaluation during training; its sampling temperature is also `evaluate`'s default."""
    runtime: tyro.conf.OmitArgPrefixes[RuntimeConfig] = field(default_factory=RuntimeConfig)
    """Where and how fast the run computes, how often it logs and saves, and whether it resumes."""

    def validate(self) -> None:
        task = get_task(self.task)
        data, optim, evaluation, runtime = self.data, self.optimisation, self.evaluation, self.runtime
        if self.collect.task != self.task:
            raise ValueError(f"--collect.task {self.collect.task!r} differs from --task {self.task!r}")
        checks = [
            (data.seq_len >= 1, f"--seq-len must be >= 1, got {data.seq_len}"),
            (
                data.seq_len <= self.collect.horizon,
                f"--seq-len {data.seq_len} is longer than the histories (--collect.horizon {self.collect.horizon})",
            ),
            (optim.batch_size >= 1, f"--batch-size must be >= 1, got {optim.batch_size}"),
            (self.collect.threads >= 0, f"--collect.threads must be >= 0, got {self.collect.threads}"),
            (
                self.collect.num_instances >= 1 and self.collect.horizon >= 1,
                "--collect.num-instances and --collect.horizon must be >= 1",
            ),
            (
                0 <= data.start_window_share <= 1,
                f"--start-window-share must be in [0, 1], got {data.start_window_share}",
            ),
            (data.episode_stride >= 1, f"--episode-stride must be >= 1, got {data.episode_stride}"),
            (optim.learning_rate > 0, f"--learning-rate must be > 0, got {optim.learning_rate}"),
            (0 <= optim.ema_decay < 1, f"--ema-decay must be in [0, 1), got {optim.ema_decay}"),
            (self.scoring.temperature > 0, f"--scoring.temperature must be > 0, got {self.scoring.temperature}"),
            (optim.total_steps >= 1, f"--total-steps must be >= 1, got {optim.total_steps}"),
            (
                0 <= optim.warmup_steps <= optim.total_steps,
                f"--warmup-steps {optim.warmup_steps} must be in [0, --total-steps {optim.total_steps}]",
            ),
            (
                self.scoring.similarity in ("dot", "cosine", "euclidean"),
                "--scoring.similarity must be dot, cosine or euclidean",
            ),
            (runtime.log_every >= 1, f"--log-every must be >= 1, got {runtime.log_every}"),
            (runtime.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {runtime.checkpoint_every}"),
            (evaluation.eval_every >= 0, f"--eval-every must be >= 0, got {evaluation.eval_every}"),
            (evaluation.eval_instances >= 1, f"--eval-instances must be >= 1, got {evaluation.eval_instances}"),
            (evaluation.eval_horizon >= 0, f"--eval-horizon must be >= 0, got {evaluation.eval_horizon}"),
            (
                len(evaluation.eval_selection) >= 1
                and len(set(evaluation.eval_selection)) == len(evaluation.eval_selection),
                f"--eval-selection needs argmax, sample or both, once each; got {list(evaluation.eval_selection)}",
            ),
            (
                not evaluation.keep_best or evaluation.keep_best in evaluation.eval_suites,
                f"--keep-best {evaluation.keep_best!r} is not one of --eval-suites "
                f"({' '.join(evaluation.eval_suites) or 'none'})",
            ),
            (
                not evaluation.keep_best or evaluation.eval_every > 0,
                "--keep-best needs --eval-every > 0 (evaluated only at the end, best.pt would be the last checkpoint)",
            ),
            (0 <= self.model.dropout < 1, f"--model.dropout must be in [0, 1), got {self.model.dropout}"),
            (self.model.n_layers >= 1, f"--model.n-layers must be >= 1, got {self.model.n_layers}"),
            (
                self.model.n_heads >= 1 and self.model.d_model % (2 * self.model.n_heads) == 0,
                f"--model.d-model {self.model.d_model} must split into --model.n-heads {self.model.n_heads} "
                "heads of even width",
            ),
            (optim.loss in ("infonce", "mse"), f"--loss must be infonce or mse, got {optim.loss!r}"),
            (math.isfinite(optim.learning_rate), f"--learning-rate must be finite, got {optim.learning_rate}"),
            (
                math.isfinite(optim.grad_clip) and optim.grad_clip > 0,
                f"--grad-clip must be finite and > 0 (the largest gradient norm kept), got {optim.grad_clip}",
            ),
            (runtime.threads >= 0, f"--threads must be >= 0, got {runtime.threads}"),
            (0 <= optim.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {optim.label_smoothing}"),
            (
                optim.loss != "mse" or self.scoring.similarity == "euclidean",
                "--loss mse regresses onto the target's embedding: select the nearest action with "
                "--scoring.similarity euclidean",
            ),
            (
                optim.loss == "infonce" or not data.policy_targets,
                "--policy-targets learns a distribution over the actions: --loss infonce",
            ),
            (
                self.model.head == "headless" or optim.loss == "infonce",
                "--model.head indexed is trained with cross-entropy: --loss infonce",
            ),
            (
                self.model.head == "indexed" or not (data.permute_actions or data.mixed_action_counts),
                "--permute-actions and --mixed-action-counts are for --model.head indexed",
            ),
            (self.model.action_dim >= 0, f"--model.action-dim must be >= 0, got {self.model.action_dim}"),
            (self.model.action_memory >= 0, f"--model.action-memory must be >= 0, got {self.model.action_memory}"),
            (
                self.model.head == "headless" or not self.model.action_memory,
                "--model.action-memory needs the headless head (an indexed head scores indices directly)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.run_name:  # (empty: a new name per start)
            check_run_name(self.run_name)
        device = resolve_device(runtime.device)
        if runtime.compile:
            check_compiler(device)
        check_schedule_fits(evaluation.temperature_schedule, task)
        if evaluation.eval_pictures and not task.can_render:
            raise ValueError(f"--eval-pictures: task {task.name!r} cannot draw its instances")
        # Builds (and so checks) the training suite, e.g. --collect.train-suite, before any collection.
        train_suite = task.train_suite(
            self.collect.num_instances, self.collect.horizon, self.collect.seed, self.collect.train_suite
        )
        if data.policy_targets:
            check_source_tells_its_policy(task, self.collect)
        if self.model.head == "indexed":
            counts = task.make_env(train_suite).action_mask.sum(axis=1)
            source = f"the training suite ({self.collect.train_suite or 'the task default'})"
            check_indexed_training(
                counts, self.model.num_actions, data.permute_actions, data.mixed_action_counts, source
            )
        for name in evaluation.eval_suites:
            suite = task.parse_suite(
                name, evaluation.eval_instances, evaluation.eval_horizon or self.collect.horizon, self.collect.seed
            )
            check_observation_size(task, suite, task.observation_size(train_suite), f"--eval-suites {name!r}")


def check_source_tells_its_policy(task: Task, collect: CollectConfig) -> None:
    """--policy-targets needs a source that tells its action distribution when it acts
    (`last_policy` or `last_probabilities`, learners.Learner): asked of the source's first action
    on one instance, before anything is collected."""
    source = collect.source or task.source_algorithm
    suite = task.train_suite(1, collect.horizon, collect.seed, collect.train_suite)
    env = task.make_env(suite)
    learner = task.make_learner(source, env, suite, np.random.default_rng(0))
    learner.act(env.reset(seed=0)[0])
    if getattr(learner, "last_policy", None) is None and getattr(learner, "last_probabilities", None) is None:
        raise ValueError(
            f"--policy-targets: the source {source} does not tell its action distribution "
            "(sources that do, such as q_learning and thompson_policy, record it with their histories)"
        )


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "optimisation": OptimisationConfig,
    "evaluation": EvaluationConfig,
    "runtime": RuntimeConfig,
}
"""The sections of TrainConfig whose options carry no prefix on the command line."""
SECTION_OF = {f.name: section for section, kind in SECTIONS.items() for f in dataclasses.fields(kind)}
"""The section of each of their options (batch_size -> optimisation)."""


def nested_config(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved training config (config.json, a checkpoint's "config") in this code's nested form:
    configs written before the sections existed hold their options at the top level. Options the
    config does not record stay absent (each reader knows its default), but for the in-training
    evaluation seed, whose default changed meaning; every section is present."""
    nested: dict[str, Any] = {}
    for key, value in saved.items():
        if key in SECTION_OF:
            nested.setdefault(SECTION_OF[key], {})[key] = value
        elif key in SECTIONS:
            nested.setdefault(key, {}).update(value)
        else:
            nested[key] = value
    for section in SECTIONS:
        nested.setdefault(section, {})
    # Runs saved before --eval-seed existed evaluated during training with their training seed + 1.
    nested["evaluation"].setdefault("eval_seed", nested.get("seed", 0) + 1)
    return nested


def option_values(config: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """A config (or a saved one, of either form) as JSON values keyed by option name, the way the
    flags spell them (seq_len, collect.horizon, model.d_model): the sections leave no trace."""
    nested = nested_config(to_jsonable(config) if isinstance(config, TrainConfig) else config)
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        flat.update(flatten(value) if key in SECTIONS else flatten({key: value}))
    return flat


def replace_options(config: TrainConfig, **changes: Any) -> TrainConfig:
    """`dataclasses.replace` by option name, whatever section holds the option:
    replace_options(config, total_steps=100, seq_len=40, model=ModelConfig(d_model=32))."""
    fields: dict[str, Any] = {name: value for name, value in changes.items() if name not in SECTION_OF}
    for name, value in changes.items():
        if name in SECTION_OF:
            section = SECTION_OF[name]
            fields[section] = dataclasses.replace(fields.get(section, getattr(config, section)), **{name: value})
    return dataclasses.replace(config, **fields)


def config_markdown(config: TrainConfig) -> str:
    """The TensorBoard config table, one row per option as its flag names it."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                section = value is config and f.name in SECTIONS
                walk(prefix if section else f"{prefix}{f.name}.", getattr(value, f.name))
        else:
            flat[prefix.rstrip(".")] = value

    walk("", config)
    return "| option | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in flat.items())


def to_jsonable(config: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def default_run_name(config: TrainConfig) -> str:
    """Unique per start, as CleanRL's are: a second `train` never collides with the first by default."""
    return f"{get_task(config.task).name}-s{config.seed}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
