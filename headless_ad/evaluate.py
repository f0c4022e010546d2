"""In-context evaluation: the model acts in held-out instances beside the source algorithm and
random, on the same instances and seeds; normalized regret compares them."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from headless_ad.action_embeddings import (
    ActionScoring,
    ActionSetTooLarge,
    action_logits,
    action_vectors,
    embed_actions,
    scoring_for,
    select_actions,
    with_no_action_row,
)
from headless_ad.episode_gifs import write_suite_gifs
from headless_ad.files import atomic_output, atomic_write_text, check_writable_folder
from headless_ad.model import HeadlessTransformer, KVCache
from headless_ad.progress import progress_bar
from headless_ad.results import RESULTS_FILE, evaluation_name, save_evaluation
from headless_ad.rollout import Rollout, run_learner
from headless_ad.tasks.base import Suite, Task, check_observation_size

Selection = Literal["sample", "argmax"]


@dataclass(frozen=True)
class TemperatureSchedule:
    """The sampled policy's temperature per instance: `start`, annealed linearly to `end` over
    the instance's first `episodes` episodes (0: `start` throughout).

    Why anneal: a source like epsilon-greedy Q-learning explores by its episode count, and a
    sliding window cannot tell the model how long it has acted, so a distilled policy keeps its
    source's early exploration wherever its context still looks early (see
    docs/experiments/darkroom.md). Counting episodes needs episode ends, so tasks with one long episode keep `start`.
    """

    start: float = 1.0
    end: float | None = None
    episodes: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and self.start > 0):
            raise ValueError(f"--sample-temperature must be > 0, got {self.start}")
        if self.episodes < 0:
            raise ValueError(f"--anneal-episodes must be >= 0, got {self.episodes}")
        if self.episodes and (self.end is None or not (math.isfinite(self.end) and self.end > 0)):
            raise ValueError(f"--anneal-episodes needs a --final-sample-temperature > 0, got {self.end}")

    def at(self, episodes_done: torch.Tensor) -> torch.Tensor | float:
        """(N, 1) temperatures for instances that have finished `episodes_done` (N,) episodes."""
        if not self.episodes or self.end is None:
            return self.start
        progress = (episodes_done.float() / self.episodes).clamp(max=1.0)
        return (self.start + (self.end - self.start) * progress)[:, None]

    def describe(self) -> str:
        if not self.episodes:
            return f"{self.start:g}"
        return f"{self.start:g} -> {self.end:g} over {self.episodes} episodes"


class ModelAgent:
    """The trained transformer as a `Learner`: it only ever learns through its context.

    Decodes incrementally with a KV cache. Once the window (the model's `max_steps`) is full, it
    re-encodes the most recent `window - reencode_every` steps and continues incrementally, so
    every decision sees between window - reencode_every + 1 and window steps of context.
    `use_cache=False` instead re-runs the whole window for every action (the reference
    implementation's way; kept for benchmarks and tests). `sample_temperature` < 1 sharpens the
    sampled policy: a distilled policy is flatter than its source where the model is unsure; a
    `TemperatureSchedule` anneals it per instance with the episodes that instance has finished.
    """

    def __init__(
        self,
        model: HeadlessTransformer,
        action_mask: np.ndarray,
        selection: Selection,
        scoring: ActionScoring,
        seed: int,
        reencode_every: int | None = None,
        use_cache: bool = True,
        sample_temperature: float | TemperatureSchedule = 1.0,
    ) -> None:
        if not isinstance(sample_temperature, TemperatureSchedule):
            sample_temperature = TemperatureSchedule(sample_temperature)
        self.model = model
        self.temperature = sample_temperature
        self.device = next(model.parameters()).device
        self.selection, self.scoring = selection, scoring
        self.window = model.config.max_steps
        self.reencode_every = reencode_every or max(1, self.window // 4)
        if not 1 <= self.reencode_every <= self.window:
            raise ValueError(f"reencode_every must be in [1, {self.window}], got {self.reencode_every}")
        self.use_cache = use_cache
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.action_mask = torch.as_tensor(action_mask, device=self.device)
        num_envs, num_actions = action_mask.shape
        # Raises ActionSetTooLarge where an indexed (AD) head has fewer outputs than the actions.
        self.embeddings = action_vectors(model.config, num_envs, num_actions, self.generator, self.device)
        self.embeddings_with_no_action = with_no_action_row(self.embeddings)
        self.cache = KVCache(model.config, num_envs, num_actions + self.window, self.device, self.embeddings.dtype)
        self.observations: list[torch.Tensor] = []
        self.prev_observations: list[torch.Tensor] = []
        self.prev_actions: list[torch.Tensor] = [torch.full((num_envs,), -1, device=self.device)]
        self.prev_rewards: list[torch.Tensor] = [torch.zeros(num_envs, device=self.device)]
        self.prev_dones: list[torch.Tensor] = [torch.zeros(num_envs, dtype=torch.bool, device=self.device)]
        self.episodes_done = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.transitions = model.prev_observation_in is not None

    @torch.inference_mode()
    def act(self, observations: np.ndarray) -> np.ndarray:
        obs = torch.as_tensor(observations, device=self.device)
        obs = obs.float() if obs.is_floating_point() else obs.long()
        if self.observations:
            self.prev_observations.append(self.observations[-1])
        else:  # before the first step there is no previous observation: zeros, or -1 if discrete
            none = torch.zeros_like(obs) if obs.is_floating_point() else torch.full_like(obs, -1)
            self.prev_observations.append(none)
        self.observations.append(obs)
        steps_cached = self.cache.length - self.cache.prompt_length
        if not self.use_cache:
            out = self._encode(min(len(self.observations), self.window), cache=None)
        elif len(self.observations) == 1 or steps_cached >= self.window:
            out = self._encode(1 if len(self.observations) == 1 else self.window - self.reencode_every + 1, self.cache)
        else:
            out = self.model.decode(
                self.cache,
                obs[:, None] if self.model.observation_in else None,
                embed_actions(self.embeddings_with_no_action, self.prev_actions[-1][:, None]),
                self.prev_rewards[-1][:, None],
                self.prev_observations[-1][:, None] if self.transitions else None,
                self.prev_dones[-1][:, None] if self.transitions else None,
            )
        self.last_output = out
        logits = action_logits(out[:, None], self.embeddings, self.action_mask, self.scoring)
        temperature = self.temperature.at(self.episodes_done)
        actions = select_actions(logits[:, 0], self.selection, self.generator, temperature)
        return actions.cpu().numpy()

    def _encode(self, keep: int, cache: KVCache | None) -> torch.Tensor:
        """Run the prompt and the last `keep` steps from scratch; output at the last step."""
        return self.model(
            self.embeddings,
            self.action_mask,
            self._window(self.observations, keep) if self.model.observation_in else None,
            embed_actions(self.embeddings_with_no_action, self._window(self.prev_actions, keep)),
            self._window(self.prev_rewards, keep),
            cache=cache,
            prev_observations=self._window(self.prev_observations, keep) if self.transitions else None,
            prev_dones=self._window(self.prev_dones, keep) if self.transitions else None,
        )[:, -1]

    @staticmethod
    def _window(history: list[torch.Tensor], keep: int) -> torch.Tensor:
        return torch.stack(history[-keep:], dim=1)

    def update(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        terminations: np.ndarray | None = None,
        truncations: np.ndarray | None = None,
        **_: np.ndarray,
    ) -> None:
        self.prev_actions.append(torch.as_tensor(actions, device=self.device).long())
        self.prev_rewards.append(torch.as_tensor(rewards, device=self.device).float())
        ended = np.zeros(len(actions), dtype=bool)
        for flags in (terminations, truncations):
            if flags is not None:
                ended |= np.asarray(flags, dtype=bool)
        self.prev_dones.append(torch.as_tensor(ended, device=self.device))
        self.episodes_done += self.prev_dones[-1]


@dataclass
class SuiteResult:
    """Every agent's rollout on one suite; the task says how to score a rollout."""

    suite: str
    task: Task
    spec: Suite
    rollouts: dict[str, Rollout] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Agents that cannot act on this suite, with the reason (an AD head narrower than its action sets)."""

    def metric(self, agent: str) -> float:
        if agent in self.not_applicable:
            return float("nan")
        return self.task.metric(self.rollouts[agent])

    def extra_metrics(self, agent: str) -> dict[str, float]:
        if agent in self.not_applicable:
            return {}
        return self.task.extra_metrics(self.spec, self.rollouts[agent])

    def normalized(self, agent: str) -> float:
        """(M_agent - M_random) / (M_source - M_random): 1 = as good as the source algorithm, 0 =
        random. For bandit regret this is (R_random - R_agent) / (R_random - R_source)."""
        random, source = self.metric("random"), self.metric(self.task.source_algorithm)
        gap = source - random
        return (self.metric(agent) - random) / gap if abs(gap) > 1e-8 else float("nan")


def run_baselines(task: Task, suite: Suite, seed: int, on_step: Callable[[], None] | None = None) -> dict[str, Rollout]:
    rollouts = {}
    for name in task.baselines:
        env = task.make_env(suite)
        learner = task.make_learner(name, env, suite, np.random.default_rng(seed))
        rollouts[name] = run_learner(env, learner, suite.horizon, seed, on_step)
    return rollouts


def check_schedule_fits(schedule: TemperatureSchedule, task: Task) -> None:
    if schedule.episodes and not task.episodic:
        raise ValueError(f"--anneal-episodes counts episodes, and a {task.name} history is one long episode")


def run_model(
    task: Task,
    suite: Suite,
    model: HeadlessTransformer,
    selection: Selection,
    scoring: ActionScoring,
    seed: int,
    sample_temperature: float | TemperatureSchedule = 1.0,
    on_step: Callable[[], None] | None = None,
) -> Rollout:
    env = task.make_env(suite)
    agent = ModelAgent(model, env.action_mask, selection, scoring, seed, sample_temperature=sample_temperature)
    was_training = model.training
    model.eval()
    try:
        return run_learner(env, agent, suite.horizon, seed, on_step)
    finally:
        model.train(was_training)


def format_table(results: list[SuiteResult], agents: list[str]) -> str:
    """Markdown table: every agent's metric (the task's), and the models' normalized score."""
    model_agents = [a for a in agents if a.startswith("model")]
    header = ["suite", *agents, *[f"normalized {a.removeprefix('model_')}" for a in model_agents]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        cells = [result.suite, *[f"{result.metric(a):.2f}" for a in agents]]
        cells += [f"{result.normalized(a):.3f}" for a in model_agents]
        cells = ["n/a" if cell == "nan" and result.not_applicable else cell for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    reasons = sorted({f"{r.suite}: {reason}" for r in results for reason in r.not_applicable.values()})
    if reasons:
        lines += ["", *[f"n/a on {reason}" for reason in reasons]]
    extra_rows = [
        (result.suite, agent, name, value)
        for result in results
        for agent in agents
        for name, value in result.extra_metrics(agent).items()
    ]
    if extra_rows:
        lines += ["", "| suite | agent | measure | value |", "|---|---|---|---|"]
        lines += [f"| {suite} | {agent} | {name} | {value:.3f} |" for suite, agent, name, value in extra_rows]
    return "\n".join(lines)


def curves_figure(result: SuiteResult):
    """Every agent's mean learning curve on one suite (x: steps or episodes, y: the task's measure)."""
    from headless_ad.plotting import agent_colour, integer_ticks, new_figure, outside_legend

    figure, axis = new_figure()
    for name, rollout in result.rollouts.items():
        axis.plot(*result.task.curve(rollout), label=name, color=agent_colour(name, result.task.source_algorithm))
    axis.set_xlabel(result.task.curve_labels[0])
    axis.set_ylabel(result.task.curve_labels[1])
    axis.set_title(f"{result.suite} ({result.spec.num_instances} instances, mean)")
    integer_ticks(axis)
    outside_legend(figure)
    return figure


def metric_tag(task: Task) -> str:
    """The task's metric name as a TensorBoard tag component: 'return (last 50 episodes)' ->
    'return_last_50_episodes'."""
    return re.sub(r"[^a-z0-9]+", "_", task.metric_name.lower()).strip("_")


def save_curves(results: list[SuiteResult], path: Path) -> None:
    """Mean curves (the task's: cumulative regret per step, return per episode) as one .npz."""
    arrays = {
        f"{r.suite}/{name}": np.stack(r.task.curve(rollout)) for r in results for name, rollout in r.rollouts.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def evaluate_in_context(
    task: Task,
    model: HeadlessTransformer,
    suites: dict[str, Suite],
    baselines: dict[str, dict[str, Rollout]],
    selections: tuple[Selection, ...],
    scoring: ActionScoring,
    seed: int,
    sample_temperature: float | TemperatureSchedule = 1.0,
    on_step: Callable[[], None] | None = None,
) -> list[SuiteResult]:
    """Run the model on every suite (all instances of a suite batched) beside precomputed baselines."""
    results = []
    for name, suite in suites.items():
        result = SuiteResult(name, task, suite, dict(baselines[name]))
        for selection in selections:
            try:
                result.rollouts[f"model_{selection}"] = run_model(
                    task, suite, model, selection, scoring, seed, sample_temperature, on_step
                )
            except ActionSetTooLarge as error:
                result.not_applicable[f"model_{selection}"] = f"the model cannot act here: {error}"
        results.append(result)
    return results


@dataclass
class EvaluateConfig:
    checkpoint: Path
    """A checkpoint.pt written by `train`."""
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
    """With `anneal_episodes`: the temperature reached after that many episodes; default: the checkpoint's."""
    anneal_episodes: int | None = None
    """Anneal the temperature over each instance's first episodes (0: constant); default: the checkpoint's."""
    seed: int = 1
    """Seeds env noise and every agent's randomness (the same for all agents)."""
    device: str = "auto"
    """auto (cuda if available, else cpu), cpu, cuda, cuda:1, ..."""
    threads: int = 0
    """torch CPU threads; 0 = torch's default."""
    gifs: int = 0
    """GIFs of the model's first and last episodes on the first `gifs` instances of every suite,
    beside the checkpoint (tasks that can draw their instances: minigrid); 0: none."""
    overwrite: bool = False
    """Replace an earlier evaluation with the same settings (its folder under <run>/evaluations/)."""


def evaluate_checkpoint(config: EvaluateConfig) -> list[SuiteResult]:
    """Evaluate a trained model on its task's suites; prints a table and writes it beside the checkpoint."""
    from headless_ad.checkpoints import CheckpointError, load_checkpoint, model_from_checkpoint
    from headless_ad.hardware import resolve_device
    from headless_ad.tasks import get_task

    if config.num_instances < 1 or config.horizon < 0:
        raise ValueError("--num-instances must be >= 1 and --horizon >= 0")
    if config.sample_temperature is not None and config.sample_temperature <= 0:
        raise ValueError(f"--sample-temperature must be > 0, got {config.sample_temperature}")
    if config.final_sample_temperature is not None and config.final_sample_temperature <= 0:
        raise ValueError(f"--final-sample-temperature must be > 0, got {config.final_sample_temperature}")
    if config.anneal_episodes is not None and config.anneal_episodes < 0:
        raise ValueError(f"--anneal-episodes must be >= 0, got {config.anneal_episodes}")
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
    train_config = checkpoint["config"]

    def given_or_trained(name: str, default: Any) -> Any:
        value = getattr(config, name)
        return value if value is not None else train_config.get(name, default)

    try:
        temperature = TemperatureSchedule(
            given_or_trained("sample_temperature", 1.0),
            given_or_trained("final_sample_temperature", None),
            given_or_trained("anneal_episodes", 0),
        )
        check_schedule_fits(temperature, task)
    except ValueError as error:
        raise CheckpointError(f"{config.checkpoint}: {error}") from None
    horizon = config.horizon or train_config.get("eval_horizon") or train_config["collect"]["horizon"]
    train_seed = train_config["collect"]["seed"]
    names = config.suites or task.default_eval_suites
    suites = {name: task.parse_suite(name, config.num_instances, horizon, train_seed) for name in names}
    for name, suite in suites.items():
        check_observation_size(task, suite, checkpoint["model_config"]["observation_size"], f"--suites {name!r}")
    name = evaluation_name(
        checkpoint["step"], names, config.seed, config.num_instances, horizon, config.selection, temperature.describe()
    )
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
