"""Throughput benchmarks, side by side in one run; writes benchmarks/RESULTS.md.

    python benchmarks/bench.py            (or: make bench; about 5 minutes on 2 cores)
    python benchmarks/bench.py --quick --out /tmp/RESULTS.md   (tiny sizes, seconds: checks that it runs)

Each figure is printed as soon as it is measured, then the whole table is written to --out.

* collection: vectorised Thompson Sampling and Q-learning over native VectorEnvs, against the
  same algorithms written plainly for one instance and stepped through gymnasium's
  SyncVectorEnv (what a user would otherwise write);
* in-context evaluation: KV-cache decoding against re-running the whole window for every action;
* training: tokens/s, data-loading share of step time, and model FLOP utilisation against this
  machine's fp32 matmul throughput measured in the same run;
* memory: peak resident set size of collection and training at the paper's scale (10,000
  instances), each measured in its own process through the CLI.
"""

# ruff: noqa: E402 (the imports below must see REPO on sys.path)
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

# The package beside this file, not an installed copy: the bench measures the code it ships with.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gymnasium as gym
import numpy as np
import torch
from train_throughput import matmul_flops, measure_mode, write_random_store

from envs.bandit import BernoulliBandit
from envs.darkroom import Darkroom
from headless_ad.action_embeddings import ActionScoring
from headless_ad.collect import CollectConfig, run_source
from headless_ad.files import atomic_write_text
from headless_ad.model import HeadlessTransformer, ModelConfig
from headless_ad.policy import ModelAgent
from headless_ad.presets import PRESETS
from headless_ad.tasks import get_task
from headless_ad.tasks.bandit import BanditSuite
from headless_ad.tasks.darkroom import DarkroomSuite


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class PlainThompsonSampling:
    """One bandit's Thompson Sampling as a user would write it: the per-instance baseline."""

    def __init__(self, num_arms: int, rng: np.random.Generator) -> None:
        self.alpha, self.beta, self.rng = np.ones(num_arms), np.ones(num_arms), rng

    def act(self) -> int:
        return int(self.rng.beta(self.alpha, self.beta).argmax())

    def update(self, arm: int, reward: float) -> None:
        self.alpha[arm] += reward
        self.beta[arm] += 1.0 - reward


class PlainQLearning:
    """One room's epsilon-greedy tabular Q-learning as a user would write it (same settings as
    `QLearning`): the per-instance baseline."""

    def __init__(self, num_states: int, num_actions: int, num_episodes: int, rng: np.random.Generator) -> None:
        self.q = rng.uniform(0.0, 1.0, (num_states, num_actions))
        self.rng, self.episodes, self.decay_episodes = rng, 0, 0.9 * num_episodes

    def act(self, state: int) -> int:
        if self.rng.random() < max(0.0, 1.0 - self.episodes / self.decay_episodes):
            return int(self.rng.integers(self.q.shape[1]))
        return int(self.q[state].argmax())

    def update(self, state: int, action: int, reward: float, next_state: int, terminated: bool, done: bool) -> None:
        target = reward + (0.0 if terminated else 0.6238 * self.q[next_state].max())
        self.q[state, action] += 0.9933 * (target - self.q[state, action])
        self.episodes += done


def bench_collection(num_instances: int, horizon: int, baseline_instances: int, threads: int) -> dict[str, float]:
    """Vectorised Thompson Sampling on the paper's training set against a plain per-instance loop
    through SyncVectorEnv on its first `baseline_instances` bandits (its speed per step does not
    depend on how many instances it loops over; best of three runs each)."""
    task = get_task("bandit")
    suite = BanditSuite(num_instances=num_instances, horizon=horizon, seed=0)
    rows = slice(0, num_instances)
    vectorised = min(timed(lambda: run_source(task, suite, "thompson", rows, 0, threads)) for _ in range(3))

    num_arms, means = suite.sample()
    # SyncVectorEnv needs one action space: every env gets the widest arm count (padding means),
    # and each learner samples only its instance's own arms.
    width = int(num_arms.max())
    sync = gym.vector.SyncVectorEnv(
        [lambda m=m: BernoulliBandit(means=m[:width], horizon=horizon) for m in means[:baseline_instances]],
        autoreset_mode="NextStep",
    )

    def per_instance() -> None:
        learners = [
            PlainThompsonSampling(int(k), np.random.default_rng(i)) for i, k in enumerate(num_arms[:baseline_instances])
        ]
        sync.reset(seed=0)
        for _ in range(horizon):
            actions = np.array([learner.act() for learner in learners])
            _, rewards, *_ = sync.step(actions)
            for learner, arm, reward in zip(learners, actions, rewards, strict=True):
                learner.update(arm, reward)

    looped = min(timed(per_instance) for _ in range(3))
    return {
        "vectorised": num_instances * horizon / vectorised,
        "per_instance": baseline_instances * horizon / looped,
    }


def bench_q_learning(num_instances: int, horizon: int, baseline_instances: int, threads: int) -> dict[str, float]:
    """Vectorised Q-learning against a plain per-instance loop through SyncVectorEnv on the first
    `baseline_instances` of the same rooms (best of three runs each)."""
    task = get_task("darkroom")
    suite = DarkroomSuite(num_instances=num_instances, horizon=horizon, seed=0)
    rows = slice(0, num_instances)
    vectorised = min(timed(lambda: run_source(task, suite, "q_learning", rows, 0, threads)) for _ in range(3))

    goals, actions = (table[:baseline_instances] for table in suite.sample())
    # SyncVectorEnv's same-step autoreset hands back the final cell in info["final_obs"].
    sync = gym.vector.SyncVectorEnv(
        [lambda g=g, a=a: Darkroom(goal=int(g), actions=a) for g, a in zip(goals, actions, strict=True)],
        autoreset_mode="SameStep",
    )
    episodes = horizon // suite.episode_len

    def per_instance() -> None:
        learners = [PlainQLearning(81, actions.shape[1], episodes, np.random.default_rng(i)) for i in range(len(goals))]
        states, _ = sync.reset(seed=0)
        for _ in range(horizon):
            taken = np.array([learner.act(state) for learner, state in zip(learners, states, strict=True)])
            next_states, rewards, terminated, truncated, info = sync.step(taken)
            done = terminated | truncated
            final = np.where(done, info.get("final_obs", next_states), next_states)
            for i, learner in enumerate(learners):
                learner.update(states[i], taken[i], rewards[i], final[i], terminated[i], done[i])
            states = next_states

    looped = min(timed(per_instance) for _ in range(3))
    return {
        "vectorised": num_instances * horizon / vectorised,
        "per_instance": baseline_instances * horizon / looped,
    }


def bench_evaluation(
    model: HeadlessTransformer, num_instances: int, horizon: int, num_actions: int, observations: int = 0
) -> dict[str, float]:
    """Model steps/s acting in-context: KV cache (re-encoding every window/4 steps once the window
    is full) against re-running the whole window for every action."""
    mask = np.ones((num_instances, num_actions), dtype=bool)
    rng = np.random.default_rng(0)

    def rollout(use_cache: bool) -> float:
        agent = ModelAgent(model, mask, "sample", ActionScoring(), seed=0, use_cache=use_cache)
        start = time.perf_counter()
        for _ in range(horizon):
            obs = rng.integers(0, max(observations, 1), num_instances)
            actions = agent.act(obs)
            agent.update(obs, actions, rng.random(num_instances).astype(np.float32))
        return num_instances * horizon / (time.perf_counter() - start)

    return {"kv_cache": rollout(True), "full_recompute": rollout(False)}


def bench_training(config: ModelConfig, batch_size: int, steps: int, tmp: Path) -> dict[str, float]:
    """The trainer's step in fp32 on CPU (see train_throughput.py), on a store of random histories."""
    num_actions = 20
    write_random_store(tmp, config.max_steps, num_actions)
    return measure_mode(config, tmp, batch_size, num_actions, steps, torch.device("cpu"), torch.float32, False)


# Runs the CLI, then writes the process's peak RSS (VmHWM, kB) to the file named by argv[1].
# Not ru_maxrss: Linux carries the forking parent's resident size over exec into it.
_PEAK_RSS_WRAPPER = """
import runpy, sys
report, sys.argv = sys.argv[1], ["headless_ad", *sys.argv[2:]]
try:
    runpy.run_module("headless_ad", run_name="__main__")
finally:
    status = open("/proc/self/status").read().splitlines()
    open(report, "w").write(next(line for line in status if line.startswith("VmHWM")).split()[1])
"""


def peak_memory(cli_args: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in GiB) of `python -m headless_ad <cli_args>` in a process of its own,
    running the package beside this file."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.NamedTemporaryFile("r", suffix=".kb") as report:
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS_WRAPPER, report.name, *cli_args], stdout=subprocess.DEVNULL, env=env
        )
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"python -m headless_ad {' '.join(cli_args)} failed")
        return seconds, int(report.read()) / 2**20


def run_in_process(cli_args: list[str]) -> tuple[float, float]:
    """(seconds, nan) of the same command in this process: what --quick runs (no interpreter start)."""
    from headless_ad.__main__ import main as cli_main

    argv, sys.argv = sys.argv, ["headless_ad", *cli_args]
    start = time.perf_counter()
    try:
        cli_main()
    except SystemExit as error:
        if error.code:
            raise RuntimeError(f"python -m headless_ad {' '.join(cli_args)} failed") from None
    finally:
        sys.argv = argv
    return time.perf_counter() - start, float("nan")


def collect_flags(config: CollectConfig, prefix: str = "") -> list[str]:
    """The command-line flags that give `config`'s store (`--collect.` flags of `train` with
    prefix="collect."): every field that identifies the histories, so collection and training
    name the same store whatever the preset's recipe is."""
    flags = [f"--{prefix}task", config.task, f"--{prefix}num-instances", str(config.num_instances)]
    flags += [f"--{prefix}horizon", str(config.horizon), f"--{prefix}seed", str(config.seed)]
    flags += [f"--{prefix}train-suite", config.train_suite, f"--{prefix}out", str(config.out)]
    if config.source is not None:
        flags += [f"--{prefix}source", config.source]
    return flags


def bench_paper_scale_memory(threads: int, root: Path, sizes: Sizes, report: Report) -> None:
    """Collection of both paper-scale stores, then 3 training steps of the `darkroom-paper` preset
    on the store its own data recipe names (collected here with the preset's CollectConfig)."""
    shutil.rmtree(root, ignore_errors=True)
    run = run_in_process if sizes.quick else peak_memory
    bandit = CollectConfig(task="bandit", num_instances=sizes.paper_instances, out=root / "bandit")
    preset = PRESETS["darkroom-paper"][1]
    darkroom = replace(preset.collect, out=root / "darkroom")
    if sizes.quick:
        darkroom = replace(darkroom, num_instances=sizes.paper_instances, horizon=sizes.paper_horizon)
    runs = {
        f"collect bandit, {bandit.num_instances:,} x {bandit.horizon:,} steps": ["collect", *collect_flags(bandit)],
        f"collect Darkroom as `darkroom-paper` does, {darkroom.num_instances:,} x {darkroom.horizon:,} steps "
        f"(`--train-suite {darkroom.train_suite}`)": ["collect", *collect_flags(darkroom)],
        # The paper preset's model (13M parameters, batch 64 x 250 tokens) on that store, 3 steps.
        "train `darkroom-paper` on it, 3 steps": [
            "train", "darkroom-paper", "--run-name", f"{root.name}-train", *collect_flags(darkroom, "collect."),
            "--total-steps", "3", "--warmup-steps", "1", "--eval-suites", "--threads", str(threads),
            "--precision", "fp32", "--device", "cpu", "--no-compile", *sizes.paper_train_overrides,
        ],
    }  # fmt: skip
    for what, cli_args in runs.items():
        seconds, rss = run(cli_args)
        report.row(f"| {what} | {seconds:.0f} s | {'-' if sizes.quick else f'{rss:.2f} GiB'} |")
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(Path("runs") / f"{root.name}-train", ignore_errors=True)


@dataclass(frozen=True)
class Sizes:
    quick: bool = False
    bandits: int = 10_000
    bandit_baseline: int = 2_000
    rooms: int = 10_000
    room_baseline: int = 500
    eval_bandits: int = 100
    eval_bandit_steps: int = 300
    eval_rooms: int = 50
    eval_room_steps: int = 800
    train_steps: int = 10
    train_batch: int = 16
    matmul_size: int = 1024
    paper_instances: int = 10_000
    paper_horizon: int = 4_000
    paper_train_overrides: tuple[str, ...] = ()


QUICK = Sizes(
    quick=True, bandits=64, bandit_baseline=8, rooms=64, room_baseline=4, eval_bandits=4, eval_bandit_steps=20,
    eval_rooms=4, eval_room_steps=40, train_steps=2, train_batch=2, matmul_size=128, paper_instances=32,
    paper_horizon=800,
    paper_train_overrides=("--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2",
                           "--batch-size", "2", "--seq-len", "20"),
)  # fmt: skip


class Report:
    """Markdown lines, each printed the moment it is added (a figure as soon as it is measured)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def row(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
        self.lines += lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, seconds: checks that the bench runs; its figures mean nothing"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    command = f"python benchmarks/bench.py --threads {args.threads}{' --quick' if args.quick else ''}"
    report = Report()
    report.row(
        "# Benchmarks",
        "",
        f"`{command}` on a {cores}-core {platform.machine()} CPU, {args.threads} torch thread(s), "
        f"torch {torch.__version__}; 1-minute load average {os.getloadavg()[0]:.1f} at the start (other jobs on",
        "the machine lower both sides of every comparison, and the ratios with them).",
        "",
        "| what | ours | baseline | ratio |",
        "|---|---|---|---|",
    )

    collection = bench_collection(sizes.bandits, 300, sizes.bandit_baseline, args.threads)  # the paper's train set
    report.row(
        f"| collection, Thompson Sampling, {sizes.bandits:,} bandits x 300 steps (env-steps/s) "
        f"| {collection['vectorised']:,.0f} "
        f"| {collection['per_instance']:,.0f} (plain per-instance loop, SyncVectorEnv, {sizes.bandit_baseline:,} "
        f"bandits) | {collection['vectorised'] / collection['per_instance']:.0f}x |"
    )
    q_learning = bench_q_learning(sizes.rooms, 400, sizes.room_baseline, args.threads)  # paper scale
    report.row(
        f"| collection, tabular Q-learning, {sizes.rooms:,} Darkrooms x 400 steps (env-steps/s) "
        f"| {q_learning['vectorised']:,.0f} "
        f"| {q_learning['per_instance']:,.0f} (plain per-instance loop, SyncVectorEnv, {sizes.room_baseline:,} rooms) "
        f"| {q_learning['vectorised'] / q_learning['per_instance']:.0f}x |"
    )
    model_config = ModelConfig(d_model=128, n_layers=3, n_heads=4, max_steps=300)
    model = HeadlessTransformer(model_config).eval()
    evaluation = bench_evaluation(model, sizes.eval_bandits, sizes.eval_bandit_steps, num_actions=20)
    report.row(
        f"| in-context evaluation, bandit (d_model 128, 3 layers, window 300), {sizes.eval_bandits:,} bandits x "
        f"{sizes.eval_bandit_steps:,} steps, 20 arms (steps/s) | {evaluation['kv_cache']:,.0f} (KV cache) "
        f"| {evaluation['full_recompute']:,.0f} (full recompute) "
        f"| {evaluation['kv_cache'] / evaluation['full_recompute']:.1f}x |"
    )
    dark_config = ModelConfig(d_model=64, n_layers=3, n_heads=4, max_steps=200, observation_kind="discrete",
                              observation_size=81)  # fmt: skip
    dark_evaluation = bench_evaluation(
        HeadlessTransformer(dark_config).eval(), sizes.eval_rooms, sizes.eval_room_steps, 50, observations=81
    )
    report.row(
        f"| in-context evaluation, Darkroom (d_model 64, 3 layers, window 200, re-encode every 50), "
        f"{sizes.eval_rooms:,} rooms x {sizes.eval_room_steps:,} steps (steps/s) "
        f"| {dark_evaluation['kv_cache']:,.0f} (KV cache) "
        f"| {dark_evaluation['full_recompute']:,.0f} (full recompute) "
        f"| {dark_evaluation['kv_cache'] / dark_evaluation['full_recompute']:.1f}x |"
    )

    report.row("", f"Training, d_model 128, 3 layers, batch {sizes.train_batch} x 320 tokens, fp32:", "")
    peak = matmul_flops(torch.device("cpu"), torch.float32, size=sizes.matmul_size)
    training = bench_training(model_config, sizes.train_batch, sizes.train_steps, tmp=Path("runs/bench-store"))
    shutil.rmtree("runs/bench-store", ignore_errors=True)
    report.row(
        f"- {training['tokens_per_second']:,.0f} tokens/s ({1e3 / training['step_ms']:.2f} optimizer steps/s)",
        f"- data loading {100 * training['data_fraction']:.1f}% of step time",
        f"- model FLOP utilisation {100 * training['model_flops'] / peak:.0f}% of this machine's measured fp32 "
        f"matmul throughput ({peak / 1e9:.0f} GFLOP/s, {sizes.matmul_size}x{sizes.matmul_size} matmul, same run)",
    )

    if sizes.quick:
        report.row("", "Wall time at tiny scale, each run in this process (--quick: no peak RSS):", "")
    else:
        report.row("", "Peak resident memory at the paper's scale, each run in its own process:", "")
    report.row("| run | wall time | peak RSS |", "|---|---|---|")
    bench_paper_scale_memory(args.threads, Path("runs/bench-paper"), sizes, report)
    report.row(
        "",
        "Collection: each side best of three runs. The baselines are the plain per-instance learners",
        "a user would write (`PlainThompsonSampling`, `PlainQLearning` in this file: one numpy call per",
        "decision), stepped through gymnasium's SyncVectorEnv; their speed per step does not depend on",
        "how many instances they loop over, so they run on the first instances only.",
        "Ours is the collector's own path (`collect.run_source`): independent chunks of 2,500",
        "instances, run side by side on threads (numpy releases the GIL in its array loops; the",
        "histories are the same on any number of threads); the per-instance loops are one thread.",
        "Thompson Sampling is bounded by Beta sampling, which both sides pay: one Beta draw per",
        "available arm and step (the baseline's `Generator.beta` on its arms; ours one float32",
        "`standard_gamma` call for all arms of a chunk, Beta = X / (X + Y); we skip padded arms).",
        "Q-learning's step is array indexing. The full-recompute baseline re-runs the whole window",
        "(prompt + history) for every action, as the reference implementation does. The Darkroom store",
        "is collected with the `darkroom-paper` preset's own collection config, so training reuses it.",
    )
    report.row("", f"1-minute load average at the end: {os.getloadavg()[0]:.1f}.")
    atomic_write_text(args.out, "\n".join(report.lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
