"""The trained model as a policy that learns in context: it acts on observations and reads back
what happened (a `Learner`, like the source algorithms), decoding with a KV cache over a
sliding window, with a sampling temperature that may anneal per instance."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from headless_ad.action_embeddings import (
    ActionScoring,
    action_logits,
    action_vectors,
    embed_actions,
    select_actions,
    with_no_action_row,
)
from headless_ad.model import HeadlessTransformer, KVCache
from headless_ad.tasks.base import Task

Selection = Literal["sample", "argmax"]


@dataclass(frozen=True)
class TemperatureSchedule:
    """The sampled policy's temperature per instance: `start`, annealed linearly to `end` over
    the instance's first `episodes` episodes or its first `steps` steps (neither: `start`
    throughout), and the min-p cut applied before it.

    Why anneal: a source like epsilon-greedy Q-learning explores by its episode count, and a
    sliding window cannot tell the model how long it has acted, so a distilled policy keeps its
    source's early exploration wherever its context still looks early (see
    docs/experiments/darkroom.md). A task with one long episode (a bandit) counts steps instead:
    its source commits as its history grows, while the distilled policy stays flatter.
    """

    start: float = 1.0
    end: float | None = None
    episodes: int = 0
    steps: int = 0
    min_p: float = 0.0
    """Before the temperature applies, drop actions less likely than `min_p` times the most likely
    one (`select_actions`); 0 keeps every action."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and self.start > 0):
            raise ValueError(f"--sample-temperature must be > 0, got {self.start}")
        for flag, length in (("--anneal-episodes", self.episodes), ("--anneal-steps", self.steps)):
            if length < 0:
                raise ValueError(f"{flag} must be >= 0, got {length}")
            if length and (self.end is None or not (math.isfinite(self.end) and self.end > 0)):
                raise ValueError(f"{flag} needs a --final-sample-temperature > 0, got {self.end}")
        if self.episodes and self.steps:
            raise ValueError("--anneal-episodes and --anneal-steps exclude each other: anneal over one")
        if not 0 <= self.min_p < 1:
            raise ValueError(f"--sample-min-p must be in [0, 1), got {self.min_p}")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TemperatureSchedule:
        """From evaluation options named as `train`'s (a checkpoint's saved evaluation config)."""
        return cls(
            options.get("sample_temperature", 1.0),
            options.get("final_sample_temperature"),
            options.get("anneal_episodes", 0),
            options.get("anneal_steps", 0),
            options.get("sample_min_p", 0.0),
        )

    def at(self, episodes_done: torch.Tensor, steps_done: int = 0) -> torch.Tensor | float:
        """(N, 1) temperatures for instances that have finished `episodes_done` (N,) episodes and
        `steps_done` steps (the same for all)."""
        if self.end is None or not (self.episodes or self.steps):
            return self.start
        if self.steps:
            progress = torch.full_like(episodes_done, min(steps_done / self.steps, 1.0), dtype=torch.float)
        else:
            progress = (episodes_done.float() / self.episodes).clamp(max=1.0)
        return (self.start + (self.end - self.start) * progress)[:, None]

    def describe(self) -> str:
        if self.episodes:
            temperature = f"{self.start:g} -> {self.end:g} over {self.episodes} episodes"
        elif self.steps:
            temperature = f"{self.start:g} -> {self.end:g} over {self.steps} steps"
        else:
            temperature = f"{self.start:g}"
        return f"{temperature}, min-p {self.min_p:g}" if self.min_p else temperature


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
        # Counted, not read from the histories: an agent acting without end drops its old steps.
        self.steps_done = 0
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
        temperature = self.temperature.at(self.episodes_done, self.steps_done)
        actions = select_actions(logits[:, 0], self.selection, self.generator, temperature, self.temperature.min_p)
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
        self.steps_done += 1


def check_schedule_fits(schedule: TemperatureSchedule, task: Task) -> None:
    if schedule.episodes and not task.episodic:
        raise ValueError(f"--anneal-episodes counts episodes, and a {task.name} history is one long episode")
