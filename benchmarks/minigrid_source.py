"""Q-learning and random on the minigrid worlds: return and success rate over each instance's last
50 episodes, and how many instances their action list can solve at all.

    OMP_NUM_THREADS=1 python benchmarks/minigrid_source.py --instances 500 --horizon 4000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from envs.minigrid import make_minigrid
from headless_ad.rollout import run_learner
from headless_ad.tasks import get_task
from headless_ad.tasks.minigrid import WORLDS, MiniGridTask


def step_cost(env_id: str = "MiniGrid-DoorKey-5x5-v0", steps: int = 20_000) -> None:
    """Microseconds per primitive step of the real env, drawing its egocentric view or not."""
    primitives = np.random.default_rng(0).choice([0, 1, 2, 3, 5], steps)
    for label, skip_view in (("with the egocentric view (minigrid's step)", False), ("without it (ours)", True)):
        env = make_minigrid(env_id, max_steps=10**9)
        if not skip_view:
            del env.gen_obs  # back to minigrid's own method
        env.reset(seed=0)
        start = time.perf_counter()
        for primitive in primitives:
            env.step(int(primitive))
        print(f"{env_id} step {label}: {(time.perf_counter() - start) / steps * 1e6:.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(WORLDS))
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--horizon", type=int, default=4_000)
    parser.add_argument("--suites", nargs="+", default=["train", "train_layouts/train", "test_layouts/test"])
    parser.add_argument("--train-suite", default="", help="options of the training suite, e.g. min_actions=25")
    parser.add_argument("--initial-q-scale", type=float, help="Q-learning starts U(0, this); default: the task's")
    parser.add_argument("--epsilon-decay-fraction", type=float, help="default: the task's")
    parser.add_argument("--step-cost", action="store_true", help="only time a minigrid step with and without its view")
    args = parser.parse_args()
    if args.step_cost:
        step_cost()
        return
    print("| task | suite | learner | return | success rate | solvable | steps/s |")
    print("|---|---|---|---|---|---|---|")
    for name in args.tasks:
        task = get_task(name)
        task = MiniGridTask(
            name,
            task.env_id,
            initial_q_scale=args.initial_q_scale or task.initial_q_scale,
            epsilon_decay_fraction=args.epsilon_decay_fraction or task.epsilon_decay_fraction,
        )
        print(
            f"| {name} | Q-learning: U(0, {task.initial_q_scale}), epsilon decay {task.epsilon_decay_fraction} ||||||"
        )
        for spec in args.suites:
            if spec == "train":  # the training suite itself (seed 0), as collected
                suite = task.train_suite(args.instances, args.horizon, 0, args.train_suite)
            else:
                suite = task.parse_suite(spec, args.instances, args.horizon, train_seed=0)
            env = task.make_env(suite)
            solvable = np.mean([env.shortest_path(i) is not None for i in range(env.num_envs)])
            for learner in ("q_learning", "random"):
                start = time.perf_counter()
                rollout = run_learner(
                    env, task.make_learner(learner, env, suite, np.random.default_rng(1)), suite.horizon, seed=1
                )
                speed = env.num_envs * suite.horizon / (time.perf_counter() - start)
                success = float(np.nanmean(task.success_rates(rollout)))
                print(
                    f"| {name} | {spec} | {learner} | {task.metric(rollout):.3f} | {success:.3f} | {solvable:.3f} "
                    f"| {speed:,.0f} |"
                )


if __name__ == "__main__":
    main()
