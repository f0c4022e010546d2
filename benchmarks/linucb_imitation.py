"""Where does a model imitating LinUCB disagree with it? LinUCB is deterministic given its history
except where arms tie exactly (every arm before the first pull, then the arms not pulled yet),
which it breaks at random. Two measurements:

* the ceiling those ties leave any imitator's teacher-forced accuracy (1 / number of tied arms),
  per arm count and range of steps, on fresh bandits;
* with --checkpoint and --stores: LinUCB replayed on each recorded history, the model's accuracy
  by LinUCB's margin (best score minus second best, in quartiles over the untied steps), and at
  tied steps the probability the model gives the tied arms (LinUCB's own policy is uniform there).

    python benchmarks/linucb_imitation.py --arms 4 10 20 30 50
    python benchmarks/linucb_imitation.py --checkpoint runs/cb-15k-s0/checkpoint.pt \\
        --stores runs/histories/cb-acc-k4 runs/histories/cb-acc-k20

Stores of LinUCB histories come from `python -m headless_ad collect --task contextual_bandit`.
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
from headless_ad.histories import HistoryStore, load_store
from headless_ad.learners import LinUCB
from headless_ad.tasks.contextual_bandit import ContextualBanditSuite, ContextualBanditTask

TIE_TOLERANCE = 1e-9


@dataclass
class Config:
    arms: tuple[int, ...] = (4, 10, 20, 30, 50)
    """Arm counts of the tie ceiling, one suite each (none: --arms with no value)."""
    instances: int = 1_000
    """Bandits per arm count for the tie ceiling."""
    step_edges: tuple[int, ...] = (50, 150)
    """Boundaries of the step ranges reported besides the whole history."""
    seed: int = 77
    checkpoint: Path | None = None
    """A contextual-bandit model's checkpoint.pt, to read on --stores."""
    stores: tuple[Path, ...] = ()
    """Stores of LinUCB histories (LinUCB with its default alpha and ridge)."""


def tie_ceiling(num_arms: int, instances: int, seed: int) -> np.ndarray:
    """(instances, horizon) 1 / the number of arms tied for LinUCB's best score at each step."""
    task = ContextualBanditTask()
    suite = ContextualBanditSuite(num_instances=instances, min_arms=num_arms, max_arms=num_arms, seed=seed)
    env = task.make_env(suite)
    learner = LinUCB(env.action_mask, np.random.default_rng(seed), dim=env.dim)
    contexts, _ = env.reset(seed=seed)
    ceiling = np.empty((instances, suite.horizon))
    for step in range(suite.horizon):
        scores = np.where(env.action_mask, learner.scores(contexts), -np.inf)
        ceiling[:, step] = 1.0 / (scores >= scores.max(axis=1, keepdims=True) - TIE_TOLERANCE).sum(axis=1)
        actions = learner.act(contexts)
        next_contexts, rewards, *_ = env.step(actions)
        learner.update(contexts, actions, rewards)
        contexts = next_contexts
    return ceiling


def replay_linucb(store: HistoryStore) -> tuple[np.ndarray, np.ndarray]:
    """LinUCB's scores along each recorded history: margins (N, T), best minus second-best score,
    and the tied-for-best arms (N, T, A). Raises if the replay would not have taken the recorded
    actions (another source, or other LinUCB parameters)."""
    contexts = np.asarray(store.observations, dtype=np.float64)
    actions, rewards = np.asarray(store.actions, dtype=np.int64), np.asarray(store.rewards, dtype=np.float64)
    mask = np.asarray(store.action_mask)
    learner = LinUCB(mask, np.random.default_rng(0), dim=contexts.shape[-1])
    margins, tied = np.empty(actions.shape), np.empty((*actions.shape, mask.shape[1]), dtype=bool)
    rows = np.arange(len(actions))
    for step in range(actions.shape[1]):
        scores = np.where(mask, learner.scores(contexts[:, step]), -np.inf)
        ranked = np.sort(scores, axis=1)
        margins[:, step] = ranked[:, -1] - ranked[:, -2]
        tied[:, step] = scores >= ranked[:, -1:] - TIE_TOLERANCE
        if not tied[rows, step, actions[:, step]].all():
            raise SystemExit(f"{store.path}: step {step} holds actions LinUCB would not take; not LinUCB histories")
        learner.update(contexts[:, step], actions[:, step], rewards[:, step])
    return margins, tied


def model_probabilities(checkpoint: Path, store: HistoryStore, seed: int) -> np.ndarray:
    """(N, T, A) the model's action probabilities along each whole recorded history (teacher forcing)."""
    loaded = load_checkpoint(checkpoint)
    model = model_from_checkpoint(loaded, torch.device("cpu"))
    scoring = scoring_for(model.config, ActionScoring(**loaded["config"]["scoring"]))
    generator = torch.Generator().manual_seed(seed)
    contexts = torch.from_numpy(np.array(store.observations, dtype=np.float32))
    actions = torch.from_numpy(np.array(store.actions, dtype=np.int64))
    rewards = torch.from_numpy(np.array(store.rewards, dtype=np.float32))
    mask = torch.from_numpy(np.array(store.action_mask))
    probabilities = []
    for rows in torch.arange(len(actions)).split(25):
        prev_actions = torch.cat([torch.full_like(actions[rows, :1], -1), actions[rows, :-1]], dim=1)
        prev_rewards = torch.cat([torch.zeros_like(rewards[rows, :1]), rewards[rows, :-1]], dim=1)
        prev_contexts = torch.cat([torch.zeros_like(contexts[rows, :1]), contexts[rows, :-1]], dim=1)
        embeddings = action_vectors(model.config, len(rows), mask.shape[1], generator)
        with torch.no_grad():
            outputs = model(
                embeddings,
                mask[rows],
                contexts[rows],
                embed_actions(with_no_action_row(embeddings), prev_actions),
                prev_rewards,
                prev_observations=prev_contexts,
                prev_dones=torch.zeros(prev_actions.shape, dtype=torch.bool),
            )
            logits = action_logits(outputs.float(), embeddings, mask[rows], scoring)
        probabilities.append(torch.softmax(logits, dim=-1).numpy())
    return np.concatenate(probabilities)


def main(config: Config) -> None:
    for num_arms in config.arms:
        ceiling = tie_ceiling(num_arms, config.instances, config.seed)
        edges = [0, *config.step_edges, ceiling.shape[1]]
        ranges = "  ".join(
            f"steps {lo}-{hi - 1} {ceiling[:, lo:hi].mean():.3f}" for lo, hi in itertools.pairwise(edges)
        )
        print(f"tie ceiling, {num_arms} arms: {ceiling.mean():.3f}  |  {ranges}")
    if config.checkpoint is None:
        return
    for path in config.stores:
        store = load_store(path)
        margins, tied = replay_linucb(store)
        probabilities = model_probabilities(config.checkpoint, store, config.seed)
        hits = probabilities.argmax(-1) == np.asarray(store.actions)
        at_tie = tied.sum(-1) > 1
        quartiles = np.quantile(margins[~at_tie], [0.25, 0.5, 0.75])
        bins = np.digitize(margins, quartiles)
        by_margin = "  ".join(
            f"q{quartile + 1} {hits[~at_tie & (bins == quartile)].mean():.3f}" for quartile in range(4)
        )
        available = np.asarray(store.action_mask).sum(-1)[:, None]
        print(
            f"{path}: accuracy {hits.mean():.3f}; by LinUCB's margin (quartile edges "
            f"{', '.join(f'{edge:.2f}' for edge in quartiles)}): {by_margin}; tied steps {at_tie.mean():.3f}, "
            f"model probability on the tied arms {(probabilities * tied).sum(-1)[at_tie].mean():.3f} "
            f"(their share of the arms {(tied.sum(-1) / available)[at_tie].mean():.3f})"
        )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(tyro.cli(Config))
