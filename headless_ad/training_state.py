"""The training state: everything a resumed run needs to continue exactly where it stopped (weights,
their moving average, optimizer, schedule, every random stream, the step), built, saved into a
checkpoint and restored from one in this one place."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from headless_ad.checkpoints import CheckpointError
from headless_ad.histories import WindowSampler
from headless_ad.model import HeadlessTransformer

RESUME_STATE = ("model", "optimizer", "scheduler", "embedding_generator", "sampler_rng", "torch_rng")
"""The parts of `TrainingState.state_dict()` a checkpoint must hold for training to resume."""


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to the peak, then a cosine down to 10% of it at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


@dataclass
class TrainingState:
    model: HeadlessTransformer
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    embedding_generator: torch.Generator
    """Draws each batch's random action embeddings (and AD-permuted's permutations)."""
    sampler: WindowSampler
    ema: AveragedModel | None = None
    step: int = 0
    train_seconds: float = 0.0
    """Wall seconds spent training up to `step` (collection included, evaluation excluded), over resumes."""
    best: dict[str, Any] | None = None
    """With --keep-best: what was measured (suite, agent, evaluation settings), the step and the
    score of the weights in best.pt."""

    @classmethod
    def new(
        cls, model: HeadlessTransformer, sampler: WindowSampler, config: Any, device: torch.device
    ) -> TrainingState:
        """Fresh state for `model`: AdamW (weight decay on matrices only) on a warm-up + cosine
        schedule, the embedding stream seeded with the run's seed, and a moving average of the
        weights when `config.optimisation.ema_decay` > 0. `config` is the run's TrainConfig."""
        optim = config.optimisation
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=optim.learning_rate,
            betas=optim.betas,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, optim.warmup_steps, optim.total_steps)
        )
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(optim.ema_decay)) if optim.ema_decay > 0 else None
        generator = torch.Generator(device=device).manual_seed(config.seed)
        return cls(model, optimizer, scheduler, generator, sampler, ema)

    @property
    def acting_model(self) -> HeadlessTransformer:
        """The weights evaluation acts with: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model

    def state_dict(self) -> dict[str, Any]:
        """This state as the checkpoint's entries."""
        device = self.embedding_generator.device
        return {
            "model": self.model.state_dict(),
            "ema_model": self.ema.module.state_dict() if self.ema is not None else None,
            "ema_steps": int(self.ema.n_averaged) if self.ema is not None else 0,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "embedding_generator": self.embedding_generator.get_state(),
            "sampler_rng": self.sampler.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "step": self.step,
            "train_seconds": self.train_seconds,
            "best": self.best,
        }

    def load_state_dict(self, checkpoint: dict[str, Any], path: Path) -> None:
        """Continue from `checkpoint` (read from `path`, named in errors)."""
        if self.ema is not None and checkpoint.get("ema_model") is None:
            raise CheckpointError(f"{path}: was trained without --ema-decay, cannot resume with it")
        device = self.embedding_generator.device
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.scheduler.load_state_dict(checkpoint["scheduler"])
            self.embedding_generator.set_state(
                checkpoint["embedding_generator"].to(self.embedding_generator.get_state().device)
            )
            self.sampler.rng.bit_generator.state = checkpoint["sampler_rng"]
            # RNG states are CPU byte tensors, whatever map_location moved the checkpoint to.
            torch.set_rng_state(checkpoint["torch_rng"].cpu())
            if device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(checkpoint["cuda_rng"].cpu(), device)
            if self.ema is not None:
                self.ema.module.load_state_dict(checkpoint["ema_model"])
                self.ema.n_averaged.fill_(checkpoint["ema_steps"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            raise CheckpointError(
                f"{path}: cannot resume from its training state ({type(error).__name__}: {error})"
            ) from None
        self.step = checkpoint["step"]
        self.train_seconds = float(checkpoint.get("train_seconds", 0.0))  # absent before it was recorded
        self.best = checkpoint.get("best")


def missing_resume_state(checkpoint: dict[str, Any]) -> list[str]:
    return [key for key in RESUME_STATE if checkpoint.get(key) is None]
