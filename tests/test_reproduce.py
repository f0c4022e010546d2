"""The reproduction plan: every method per family, reuse of finished runs, resumption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headless_ad.methods import method_name
from headless_ad.reproduce import ReproduceConfig, describe_plan, plan_jobs, reproduce
from headless_ad.train_config import to_jsonable


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_bandit_plan_has_every_method_per_seed_and_ad_per_arm_count() -> None:
    jobs = plan_jobs(ReproduceConfig("bandit", seeds=2, scale="quick"))
    methods = [method_name(to_jsonable(job.train)) for job in jobs]
    assert methods.count("Headless-AD") == 2 and methods.count("AD") == 6 and methods.count("AD-permuted") == 2
    assert {"no prompt", "Gaussian embeddings", "MSE loss"} <= set(methods)
    ad = [job for job in jobs if method_name(to_jsonable(job.train)) == "AD" and job.train.seed == 0]
    assert [(job.train.collect.train_suite, job.evaluate.suites) for job in ad] == [
        ("arms=10", ("num_10",)), ("arms=20", ("num_20",)), ("arms=30", ("num_30",)),
    ]  # fmt: skip
    permuted = next(job for job in jobs if job.train.data.permute_actions)
    assert permuted.train.model.num_actions == 30 and permuted.evaluate.suites == ("num_10", "num_20", "num_30")
    assert all(job.train.runtime.threads == 1 for job in jobs)
    assert len({job.train.run_name for job in jobs}) == len(jobs)


def test_darkroom_plan_has_the_ads_that_knew_the_actions_and_the_width_switch() -> None:
    jobs = plan_jobs(ReproduceConfig("darkroom", seeds=1, scale="quick"))
    suites = {job.train.run_name.removeprefix("reproduce-darkroom-quick-"): job.evaluate.suites for job in jobs}
    assert suites["ad-actionstest-s0"] == ("test_goals/test",) and suites["ad-actionsall-s0"] == ("test_goals/all",)
    assert "test_goals/all" in suites["ad-default-s0"]  # reported as n/a there, not skipped
    assert any(job.train.model.action_dim == 128 for job in jobs)
    minigrid = plan_jobs(ReproduceConfig("minigrid", seeds=1, scale="quick"))
    layouts = {job.train.run_name.removeprefix("reproduce-minigrid-quick-"): job.evaluate.suites for job in minigrid}
    assert layouts["ad-actionstest-s0"] == ("test_layouts/test",) and "test_layouts/all" in layouts["headless-ad-s0"]
    contextual = plan_jobs(ReproduceConfig("contextual_bandit", seeds=1, scale="quick"))
    assert {method_name(to_jsonable(job.train)) for job in contextual} == {"Headless-AD", "AD", "AD-permuted"}


def test_finished_runs_are_reused_and_checkpointed_ones_resumed(capsys) -> None:
    config = ReproduceConfig("bandit", seeds=1, scale="quick")
    jobs = plan_jobs(config)
    assert {job.status() for job in jobs} == {"new"}
    jobs[0].run_dir.mkdir(parents=True)
    (jobs[0].run_dir / "checkpoint.pt").write_bytes(b"")
    assert jobs[0].status() == "resume"
    for job in jobs:  # pretend every run finished: nothing is trained, the report gets every run
        job.results_dir.mkdir(parents=True)
        (job.results_dir / "results.json").write_text(json.dumps({}))
    assert f"{len(jobs)} runs, {len(jobs)} done; 0 to run" in describe_plan(jobs, 2)
    reported = []
    reproduce(config, lambda runs, out: reported.append((runs, out)))
    assert "ran 0 runs" in capsys.readouterr().out
    assert reported[0][0] == [job.run_dir for job in jobs]
    assert reported[0][1] == Path("runs/reproduce-bandit-quick-report")


def test_the_estimate_comes_from_the_finished_runs_times() -> None:
    import torch

    config = ReproduceConfig("bandit", seeds=1, scale="quick")
    jobs = plan_jobs(config)
    for job, (train_seconds, eval_seconds) in zip(jobs[:3], ((30.0, 4.0), (60.0, 6.0), (9000.0, 8.0)), strict=True):
        job.run_dir.mkdir(parents=True)
        torch.save({"step": 3, "train_seconds": train_seconds}, job.run_dir / "checkpoint.pt")
        job.results_dir.mkdir(parents=True)
        evaluation = {"suites": list(job.evaluate.suites)}
        (job.results_dir / "results.json").write_text(
            json.dumps({"wall_seconds": eval_seconds * len(job.evaluate.suites), "evaluation": evaluation})
        )
    pending = plan_jobs(config)[3]
    # medians: 20 s a step (of 10, 20, 3000), 6 s a suite
    assert pending.seconds == pytest.approx(3 * 20.0 + len(pending.evaluate.suites) * 6.0)


def test_plan_refuses_bad_counts() -> None:
    with pytest.raises(ValueError, match="--seeds and --jobs must be >= 1"):
        plan_jobs(ReproduceConfig("bandit", seeds=0))
