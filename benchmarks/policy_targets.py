"""Does learning the source's action distribution (--policy-targets) beat learning its sampled
action? One seed of the comparison, at `reproduce <family> --scale cpu`'s scale: trains the twin of
that reproduction's Headless-AD run with --policy-targets (from a store that records Q-learning's
epsilon-greedy distribution; the same histories), then evaluates both runs on validation suites
that no reported number uses. Run it once per seed, then `report` both runs' validation results:

    python benchmarks/policy_targets.py --family darkroom --seed 0
    python -m headless_ad report runs/reproduce-darkroom-cpu-headless-ad-s{0,1,2} \\
        runs/policy-targets-darkroom-s{0,1,2} --evaluations '*seed=77*' --out runs/policy-targets-report

Needs the reproduction's Headless-AD run of that seed (`reproduce <family> --seeds N`). Collect
the store first when several seeds start side by side (a second writer of a store fails at once):
`python -m headless_ad collect --task darkroom --num-instances 2000 --horizon 4000
--train-suite min_actions=25 --out runs/histories/darkroom-q_learning-policy-s0 --threads 1`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import tyro

from headless_ad.evaluate import EvaluateConfig, evaluate_checkpoint
from headless_ad.reproduce import ReproduceConfig, plan_jobs
from headless_ad.train_config import replace_options
from headless_ad.trainer import train

VALIDATION_SUITES = {
    "darkroom": ("test_goals/test,seed=77", "test_goals/all,seed=78"),
    "minigrid": ("test_layouts/test,seed=11", "test_layouts/all,seed=12"),
}
"""Other instances of the held-out goals or layouts (other action subsets and orders) than the
reported suites, which use the suites' own seeds."""


@dataclass
class Config:
    family: Literal["darkroom", "minigrid"] = "darkroom"
    """darkroom or minigrid: a family whose source (Q-learning) tells its distribution."""
    seed: int = 0
    """Training seed: the reproduction's run reproduce-<family>-cpu-headless-ad-s<seed>."""
    instances: int = 50
    """Instances per validation suite."""


def main(config: Config) -> None:
    [baseline] = [
        job
        for job in plan_jobs(ReproduceConfig(config.family, seeds=config.seed + 1))
        if job.train.run_name.endswith(f"-headless-ad-s{config.seed}")
    ]
    if baseline.status() != "done":
        raise SystemExit(f"{baseline.run_dir}: not finished; run `reproduce {config.family}` first")
    collect = baseline.train.collect
    twin = replace_options(
        baseline.train,
        run_name=f"policy-targets-{config.family}-s{config.seed}",
        policy_targets=True,
        collect=replace(collect, out=Path("runs/histories") / f"{config.family}-q_learning-policy-s{collect.seed}"),
    )
    if not (Path("runs") / twin.run_name / "checkpoint.pt").is_file():
        train(twin)
    for run_name in (baseline.train.run_name, twin.run_name):
        evaluation = EvaluateConfig(
            checkpoint=Path("runs") / run_name / "checkpoint.pt",
            suites=VALIDATION_SUITES[config.family],
            num_instances=config.instances,
            horizon=collect.horizon,
            selection=("sample",),
            threads=1,
        )
        with contextlib.suppress(FileExistsError):  # evaluated before: kept
            evaluate_checkpoint(evaluation)


if __name__ == "__main__":
    main(tyro.cli(Config))
