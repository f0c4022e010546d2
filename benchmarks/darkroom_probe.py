"""Where a Darkroom model falls short of Q-learning, by how far the goal is.

    python benchmarks/darkroom_probe.py runs/darkroom/checkpoint.pt --suite test_goals/test

Groups the suite's rooms by the fewest actions that reach the goal (1, 2 or 3 with 3-move
actions) and reports per group:

- return over the last 50 episodes of the model acting in-context (sampled, the checkpoint's
  temperature) and of Q-learning, on the same rooms and seeds (what `evaluate` averages);
- *replay*: Q-learning's own history is fed to the model (teacher forcing) and we measure the
  probability the model gives to Q-learning's next action over the last `--replay-steps` steps,
  where Q-learning has mostly converged onto one path. A model that cannot replay a path
  written out in its context cannot converge onto it either; one that replays it but still
  fails when acting has an exploration problem, not a copying one.

- *repeats*: how often the model's episode succeeds after a successful one and after a failed
  one (all episodes but each room's first), and Q-learning's success after a success by episode
  range: Q-learning explores by its episode count, which a sliding window does not show.

`--add-test-actions N` appends the first N test actions to every room's action list (e.g.
`--suite test_goals/train --add-test-actions 25`: 75 actions, 50 of them the training ones), to
tell the number of actions apart from their novelty.

Prints a markdown table.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from headless_ad.action_embeddings import ActionScoring, action_logits
from headless_ad.checkpoints import load_checkpoint, model_from_checkpoint
from headless_ad.evaluation import run_baselines, run_model
from headless_ad.policy import ModelAgent, TemperatureSchedule
from headless_ad.rollout import Rollout
from headless_ad.tasks.darkroom import DarkroomSuite, DarkroomTask
from headless_ad.train_config import nested_config


@dataclass(frozen=True)
class WithTestActions(DarkroomSuite):
    """A suite whose rooms also offer the first `added` test actions, after their own."""

    added: int = 0

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        goals, actions = super().sample()
        extra = np.broadcast_to(self.splits["test_actions"][: self.added], (len(goals), self.added))
        return goals, np.ascontiguousarray(np.concatenate([actions, extra], axis=1))


def success_after(returns: np.ndarray, first: int = 1, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per room: (episodes after a success that succeed, such episodes) and the same after a
    failure, over the episodes with index in [first, stop); `returns` (N, E), NaN-padded."""
    previous, current = returns[:, first - 1 : (stop - 1) if stop else -1], returns[:, first:stop]
    counted = ~np.isnan(current)
    after_success, after_failure = counted & (previous > 0), counted & (previous == 0)
    won = current > 0
    return (
        np.stack([(won & after_success).sum(axis=1), after_success.sum(axis=1)]),
        np.stack([(won & after_failure).sum(axis=1), after_failure.sum(axis=1)]),
    )


def rate(counts: np.ndarray, rows: np.ndarray) -> str:
    hits, total = counts[:, rows].sum(axis=1)
    return f"{hits / total:.2f}" if total else "-"


@torch.inference_mode()
def replay_probability(agent: ModelAgent, source: Rollout, scoring: ActionScoring, last: int) -> np.ndarray:
    """(N,) mean probability the model gives the source's action over its last `last` steps,
    with the source's history (not the model's) as context."""
    num_steps = source.actions.shape[1]
    rows = np.arange(source.actions.shape[0])
    probability = np.zeros((len(rows), last))
    for t in range(num_steps):
        agent.act(source.observations[:, t])  # fills agent.last_output; its own choice is ignored
        if t >= num_steps - last:
            logits = action_logits(agent.last_output[:, None], agent.embeddings, agent.action_mask, scoring)[:, 0]
            temperature = agent.temperature.at(agent.episodes_done)  # as when acting: by the episodes so far
            chosen = torch.softmax(logits.float() / temperature, dim=-1).cpu().numpy()[rows, source.actions[:, t]]
            probability[:, t - (num_steps - last)] = chosen
        # Darkroom ends an episode on reaching the goal (terminated) or at its step limit (truncated).
        reached = source.dones[:, t] & (source.rewards[:, t] > 0)
        agent.update(
            source.observations[:, t], source.actions[:, t], source.rewards[:, t],
            terminations=reached, truncations=source.dones[:, t] & ~reached,
        )  # fmt: skip
    return probability.mean(axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--suite", default="test_goals/test")
    parser.add_argument("--num-instances", type=int, default=100)
    parser.add_argument("--horizon", type=int, default=4_000)
    parser.add_argument("--replay-steps", type=int, default=1_000)
    parser.add_argument("--add-test-actions", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--sample-temperature", type=float, help="default: the checkpoint's")
    parser.add_argument("--final-sample-temperature", type=float, help="default: the checkpoint's")
    parser.add_argument("--anneal-episodes", type=int, help="default: the checkpoint's")
    args = parser.parse_args()
    if not 1 <= args.replay_steps <= args.horizon:
        parser.error("--replay-steps must be in [1, --horizon]")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    checkpoint = load_checkpoint(args.checkpoint, expected_task="darkroom")
    model = model_from_checkpoint(checkpoint, torch.device("cpu")).eval()
    scoring = ActionScoring(**checkpoint["config"]["scoring"])
    trained = nested_config(checkpoint["config"])["evaluation"]
    given = {
        name: getattr(args, name) for name in ("sample_temperature", "final_sample_temperature", "anneal_episodes")
    }
    start, end, episodes = (trained.get(name) if value is None else value for name, value in given.items())
    temperature = TemperatureSchedule(start or 1.0, end, episodes or 0)
    task = DarkroomTask()
    suite = task.parse_suite(args.suite, args.num_instances, args.horizon, train_seed=0)
    if args.add_test_actions:
        if suite.actions not in ("train", "train_permuted"):
            parser.error("--add-test-actions needs a suite with the train actions (they would repeat test ones)")
        suite = WithTestActions(**asdict(suite), added=args.add_test_actions)

    baselines = run_baselines(task, suite, args.seed)
    q_learning = baselines["q_learning"]
    acting = run_model(task, suite, model, "sample", scoring, args.seed, temperature)
    env = task.make_env(suite)
    replay_agent = ModelAgent(model, env.action_mask, "sample", scoring, args.seed, sample_temperature=temperature)
    replay = replay_probability(replay_agent, q_learning, scoring, args.replay_steps)
    distance = env.min_steps

    returns = {
        "model": task.last_episode_returns(acting),
        "q_learning": task.last_episode_returns(q_learning),
        "random": task.last_episode_returns(baselines["random"]),
    }
    added = f" + {args.add_test_actions} test actions" if args.add_test_actions else ""
    print(f"{args.checkpoint} on {args.suite}{added}, {args.num_instances} rooms, {args.horizon} steps", end="")
    print(f", seed {args.seed}")
    print(f"sample temperature {temperature.describe()}; ", end="")
    print(f"replay: p(Q-learning's action), its last {args.replay_steps} steps\n")
    print("| actions to goal | rooms | model return | Q-learning return | random return | replay "
          "| model: success after a success | after a failure |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    groups = [(f"{d}", distance == d) for d in np.unique(distance)] + [("all", np.ones_like(distance, dtype=bool))]
    after_success, after_failure = success_after(task.episode_returns(acting))
    for label, rows in groups:
        cells = [f"{values[rows].mean():.2f}" for values in returns.values()]
        repeats = f"{rate(after_success, rows)} | {rate(after_failure, rows)}"
        print(f"| {label} | {rows.sum()} | {' | '.join(cells)} | {replay[rows].mean():.2f} | {repeats} |")

    ranges = [(1, 16), (16, 48), (48, 96), (96, 160), (160, 240), (240, None)]
    source_returns = task.episode_returns(q_learning)
    print("\nQ-learning: success after a success, by episode range\n")
    print("| actions to goal | " + " | ".join(f"{a}-{b - 1 if b else ''}" for a, b in ranges) + " |")
    print("|---|" + "---|" * len(ranges))
    for label, rows in groups[:-1]:
        cells = [rate(success_after(source_returns, a, b)[0], rows) for a, b in ranges]
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
