"""How close is a bandit model to Thompson Sampling's policy, step by step, on histories it never saw?

Trained with sampled targets, the model's loss can fall no lower than the entropy of Thompson
Sampling's own action distribution: cross-entropy = entropy + KL(TS || model). This script
measures both on recorded Thompson Sampling histories, teacher-forced (the model reads the
history TS wrote and predicts TS's next action):

- TS's arm probabilities at every step, by Monte Carlo from the Beta posteriors the history implies;
- the model's log-probability of the action TS took, from one forward pass over the whole history.

Mean over steps, entropy is the floor of the training loss and cross-entropy - entropy the KL the
model is from TS; the table splits both by phase of the history. Collect the histories with seeds
no training store uses, for example:

    python -m headless_ad collect --task bandit --num-instances 500 --seed 99 --out runs/histories/bandit-val
    python benchmarks/thompson_gap.py --store runs/histories/bandit-val --checkpoints runs/bd-7k-s0/checkpoint.pt
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
    with_no_action_row,
)
from headless_ad.checkpoints import load_checkpoint, model_from_checkpoint
from headless_ad.histories import load_store


@dataclass
class Config:
    store: Path
    """A Thompson Sampling history store the model did not train on."""
    histories: int = 256
    """How many of the store's histories to measure."""
    draws: int = 1_000
    """Monte Carlo draws per step for TS's arm probabilities."""
    phases: tuple[int, ...] = (0, 25, 100, 200)
    """Steps where the table's phases begin."""
    seed: int = 0
    """Seeds the Monte Carlo draws and the action embeddings."""
    checkpoints: tuple[Path, ...] = ()
    """Bandit checkpoints (trained on Thompson Sampling histories) to compare."""


def thompson_probabilities(
    actions: np.ndarray, rewards: np.ndarray, action_mask: np.ndarray, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """(N, T, A) probability that each arm's Beta(1 + successes, 1 + failures) draw is the largest,
    from the posterior before each step; unavailable arms get 0."""
    num_histories, horizon = actions.shape
    pulls = np.zeros((num_histories, horizon, action_mask.shape[1]), dtype=np.float32)
    np.put_along_axis(pulls, actions[..., None], 1.0, axis=2)
    successes = np.cumsum(pulls * rewards[..., None], axis=1) - pulls * rewards[..., None]
    failures = np.cumsum(pulls * (1 - rewards[..., None]), axis=1) - pulls * (1 - rewards[..., None])
    probabilities = np.zeros_like(pulls)
    for t in range(horizon):  # one step at a time keeps the (N, A, draws) samples small
        samples = rng.beta(
            1 + successes[:, t, :, None], 1 + failures[:, t, :, None], size=(*successes[:, t].shape, draws)
        )
        samples[~action_mask] = -1.0
        best = samples.argmax(axis=1)  # (N, draws)
        for arm in range(action_mask.shape[1]):
            probabilities[:, t, arm] = (best == arm).mean(axis=1)
    return probabilities


@torch.no_grad()
def model_log_probabilities(
    checkpoint_path: Path, actions: np.ndarray, rewards: np.ndarray, action_mask: np.ndarray, seed: int
) -> np.ndarray:
    """(N, T, A) log-probabilities of the model at temperature 1, reading each whole history."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = model_from_checkpoint(checkpoint, torch.device("cpu"))
    scoring = ActionScoring(**checkpoint["config"]["scoring"])
    generator = torch.Generator().manual_seed(seed)
    mask = torch.from_numpy(action_mask)
    embeddings = action_vectors(model.config, len(actions), action_mask.shape[1], generator)
    prev_actions = torch.from_numpy(np.concatenate([np.full((len(actions), 1), -1), actions[:, :-1]], axis=1))
    prev_rewards = torch.from_numpy(
        np.concatenate([np.zeros((len(actions), 1)), rewards[:, :-1]], axis=1).astype(np.float32)
    )
    outputs = model(embeddings, mask, None, embed_actions(with_no_action_row(embeddings), prev_actions), prev_rewards)
    return torch.log_softmax(action_logits(outputs, embeddings, mask, scoring), dim=-1).numpy()


def main(config: Config) -> None:
    store = load_store(config.store)
    rows = slice(0, config.histories)
    actions = np.array(store.actions[rows], dtype=np.int64)
    rewards = np.array(store.rewards[rows], dtype=np.float32)
    action_mask = np.array(store.action_mask[rows])
    probabilities = thompson_probabilities(
        actions, rewards, action_mask, config.draws, np.random.default_rng(config.seed)
    )
    plogp = np.where(probabilities > 0, probabilities * np.log(np.maximum(probabilities, 1e-12)), 0.0)
    entropy = -plogp.sum(axis=2).mean(axis=0)
    cross_entropies = []
    for checkpoint in config.checkpoints:
        log_probabilities = model_log_probabilities(checkpoint, actions, rewards, action_mask, config.seed)
        cross_entropies.append(-np.take_along_axis(log_probabilities, actions[..., None], axis=2)[..., 0].mean(axis=0))
    horizon = actions.shape[1]
    print(f"{config.histories} histories of {config.store}, {config.draws} draws per step; cells: cross-entropy / KL")
    print("| steps | TS entropy (loss floor) | " + " | ".join(str(path) for path in config.checkpoints) + " |")
    print("|---" * (2 + len(config.checkpoints)) + "|")
    bounds = [*config.phases, horizon]
    for first, stop in [*itertools.pairwise(bounds), (0, horizon)]:
        h = entropy[first:stop].mean()
        cells = [f"{ce[first:stop].mean():.3f} / {ce[first:stop].mean() - h:.3f}" for ce in cross_entropies]
        print(f"| {first}-{stop - 1} | {h:.3f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(tyro.cli(Config))
