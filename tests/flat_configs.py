"""Training configs as the code before the option sections wrote them (every option of the data,
optimisation, evaluation and runtime sections at the top level), to check that old runs still load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headless_ad.train_config import SECTIONS

FLAT_CONFIG = Path(__file__).parent / "data" / "flat_config.json"
"""config.json of `train bandit --total-steps 20 --warmup-steps 2 --eval-every 0
--collect.num-instances 64 --run-name old-format-check --threads 1 --eval-instances 8`, written
by the code before the sections."""

ADDED_SINCE = {
    "eval_seed": 1,
    "policy_targets": False,
    "eval_selection": ["argmax", "sample"],
    "keep_best": "",
    "anneal_steps": 0,
    "sample_min_p": 0.0,
}
"""Options added after the flat record was written, with the value its run had in effect (the
in-training evaluation seed was the training seed + 1)."""
MODEL_ADDED_SINCE = {
    "model.action_regression_features": False,
    "model.first_use_action": False,
    "model.action_memory": 0,
}
"""Model options added after the record, which a saved model config without them builds with."""
FILLED_ON_READ = {"eval_seed": 1}
"""Of those, what reading the record fills in (train_config.nested_config); the others stay
absent, and their readers apply the default."""


def flat_form(nested: dict[str, Any], drop: set[str] | dict[str, Any] = frozenset()) -> dict[str, Any]:
    """A nested saved config in the flat form, options in the same order, without those in `drop`."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if key == "model":
            value = {name: field for name, field in value.items() if f"model.{name}" not in drop}
        if key in SECTIONS:
            flat.update(value)
        else:
            flat[key] = value
    return {key: value for key, value in flat.items() if key not in drop}
