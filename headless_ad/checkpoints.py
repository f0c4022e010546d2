"""Checkpoints: one dict (model, optimizer, scheduler, RNG states, step, config), written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from headless_ad.files import atomic_output
from headless_ad.model import HeadlessTransformer, ModelConfig

CHECKPOINT_VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or not for this task."""


def load_checkpoint(path: Path, expected_task: str | None = None, map_location: Any = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint here")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from None
    required = {"task", "config", "model_config", "model", "step"}
    if (
        not isinstance(checkpoint, dict)
        or checkpoint.get("version") != CHECKPOINT_VERSION
        or required - checkpoint.keys()
    ):
        raise CheckpointError(f"{path}: not a headless-ad checkpoint of version {CHECKPOINT_VERSION}")
    if expected_task is not None and checkpoint["task"] != expected_task:
        raise CheckpointError(f"{path}: a checkpoint of task {checkpoint['task']!r}, not {expected_task!r}")
    return checkpoint


def non_finite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors in `state_dict` holding NaN or infinity."""
    return [
        name
        for name, value in state_dict.items()
        if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def model_from_checkpoint(checkpoint: dict[str, Any], device: torch.device) -> HeadlessTransformer:
    """The model to act with: the moving average of the weights when training kept one. Refuses
    weights holding NaN or infinity (a run that diverged): they would act, and score, as garbage."""
    weights = checkpoint.get("ema_model") or checkpoint["model"]
    bad = non_finite_tensors(weights) if isinstance(weights, dict) else []
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"non-finite weights ({shown}): the training that wrote it diverged")
    try:
        model = HeadlessTransformer(ModelConfig(**checkpoint["model_config"])).to(device)
        model.load_state_dict(checkpoint.get("ema_model") or checkpoint["model"])
    except (TypeError, RuntimeError) as error:
        raise CheckpointError(f"weights and model config do not match this code's model ({error})") from None
    return model.eval()
