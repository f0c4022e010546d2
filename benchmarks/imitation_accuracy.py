"""How often does a trained model pick the action its source took? Teacher-forced accuracy on
held-out histories, per store and per range of steps from the history's start.

Each store is read as training reads it: windows of the checkpoint's seq_len, starting at the
first step, one fresh draw of action embeddings per window, and the model's most likely action
compared with the one the source took. Collect one store per condition (say, one arm count per
store, on instances no reported suite uses), then compare:

    python -m headless_ad collect --task contextual_bandit --num-instances 200 --seed 77 \\
        --train-suite arms=20 --out runs/histories/cb-acc-k20 --threads 1
    python benchmarks/imitation_accuracy.py --checkpoint runs/cb-15k-s0/checkpoint.pt \\
        --stores runs/histories/cb-acc-k4 runs/histories/cb-acc-k20

A source that breaks ties at random caps any imitator below 1 on the steps where it tied.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from headless_ad.action_embeddings import (
    ActionScoring,
    action_logits,
    action_vectors,
    embed_actions,
    scoring_for,
    with_no_action_row,
)
from headless_ad.checkpoints import load_checkpoint, model_from_checkpoint
from headless_ad.histories import WindowSampler, load_store


@dataclass
class Config:
    checkpoint: Path
    """A trained model's checkpoint.pt (its moving-average weights when it kept them)."""
    stores: tuple[Path, ...]
    """History stores of the checkpoint's task, one per condition to compare."""
    windows: int = 200
    """Windows read per store (drawn with replacement among its histories)."""
    step_edges: tuple[int, ...] = (50, 150)
    """Boundaries of the step ranges reported besides the whole window."""
    seed: int = 0
    """Seed of the window draws and of the action embeddings."""


def window_hits(model: torch.nn.Module, scoring: ActionScoring, sampler: WindowSampler, generator: torch.Generator):
    """(B, L) whether the model's most likely action is the source's, for one batch of windows."""
    batch = sampler.sample()
    embeddings = action_vectors(model.config, batch.action_mask.shape[0], batch.action_mask.shape[1], generator)
    with torch.no_grad():
        outputs = model(
            embeddings,
            batch.action_mask,
            batch.observations,
            embed_actions(with_no_action_row(embeddings), batch.prev_actions),
            batch.prev_rewards,
            prev_observations=batch.prev_observations,
            prev_dones=batch.prev_dones,
        )
        logits = action_logits(outputs.float(), embeddings, batch.action_mask, scoring)
    return (logits.argmax(-1) == batch.targets).numpy()


def main(config: Config) -> None:
    checkpoint = load_checkpoint(config.checkpoint)
    model = model_from_checkpoint(checkpoint, torch.device("cpu"))
    scoring = scoring_for(model.config, ActionScoring(**checkpoint["config"]["scoring"]))
    seq_len = checkpoint["config"]["data"]["seq_len"]
    generator = torch.Generator().manual_seed(config.seed)
    edges = [0, *config.step_edges, seq_len]
    print(f"{config.checkpoint} (step {checkpoint['step']}): accuracy over {config.windows} windows of {seq_len} steps")
    for path in config.stores:
        store = load_store(path)
        batch_size = min(25, config.windows)
        sampler = WindowSampler(store, seq_len, batch_size, config.seed, start_share=1.0)
        hits = np.concatenate(
            [window_hits(model, scoring, sampler, generator) for _ in range(-(-config.windows // batch_size))]
        )[: config.windows]
        ranges = "  ".join(f"steps {lo}-{hi - 1} {hits[:, lo:hi].mean():.3f}" for lo, hi in itertools.pairwise(edges))
        print(f"{path}: {hits.mean():.3f}  |  {ranges}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(tyro.cli(Config))
