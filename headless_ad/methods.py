"""Which method a training config is (Headless-AD, the AD baselines, the ablations), and the
checks that a method can train on a store's action sets.

Every method is the same model and trainer under different switches; a run's method is read back
from its saved config, so that `report` can group runs without being told.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("Headless-AD", "AD", "AD-permuted", "no prompt", "Gaussian embeddings", "MSE loss")
"""Names `method_name` gives, in the order reports show them."""


def method_name(config: dict[str, Any]) -> str:
    """The method of a saved training config (`config.json` of a run, as a dict in the nested form
    of train_config.nested_config)."""
    model = config.get("model", {})
    if model.get("head", "headless") == "indexed":
        return "AD-permuted" if config.get("data", {}).get("permute_actions") else "AD"
    if not model.get("action_prompt", True):
        return "no prompt"
    if model.get("gaussian_actions"):
        return "Gaussian embeddings"
    if config.get("optimisation", {}).get("loss", "infonce") == "mse":
        return "MSE loss"
    return "Headless-AD"


def check_indexed_training(
    action_counts: np.ndarray, num_actions: int, permute: bool, mixed: bool, source: str
) -> None:
    """An indexed (AD) head trains on histories of one action count, as the paper's AD does per
    action set: index i means the same thing in every history only then. AD-permuted (or an
    explicit `mixed`) may train on several; no history may have more actions than the head."""
    counts = np.unique(action_counts)
    if num_actions and counts.max() > num_actions:
        raise ValueError(
            f"{source} has instances with {counts.max()} actions, more than --model.num-actions {num_actions}"
        )
    if counts.size > 1 and not (permute or mixed):
        raise ValueError(
            f"AD (--model.head indexed) trains per action set, but {source} has instances with "
            f"{counts.min()}-{counts.max()} actions: collect one count (e.g. --collect.train-suite arms=10), "
            "or pass --permute-actions or --mixed-action-counts"
        )
