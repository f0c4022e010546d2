"""`report` on tiny synthetic runs with known per-instance values: means, CIs, IQM, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from headless_ad.__main__ import main
from headless_ad.report import BOOTSTRAP_REPS, ReportConfig, collect_curves, group_runs, load_run, write_report
from headless_ad.results import RESULTS_VERSION

INSTANCES, STEPS = 4, 5


def make_run(
    root: Path, name: str, values: np.ndarray, task: str = "bandit", seed: int = 0, shares: float = 0.0, **config
) -> Path:
    """A finished run whose model scored `values` (per instance) on suite num_10 (num_20: n/a for AD);
    with `shares`, every agent also has extra curves on num_10, rising linearly to `shares`."""
    run = root / name
    folder = run / "evaluations" / "step10_seed1"
    folder.mkdir(parents=True)
    model = config.pop("model", {})
    (run / "config.json").write_text(json.dumps({"task": task, "seed": seed, "model": model, **config}))
    curves, agents = {}, {}
    baselines = {"thompson": np.full(INSTANCES, 1.0), "random": np.full(INSTANCES, 9.0)}
    for index, (agent, per_instance) in enumerate({**baselines, "model_sample": values}.items()):
        # a curve rising linearly to the instance's final value
        curves[f"c{index}_x"] = np.arange(1, STEPS + 1)
        curves[f"c{index}_y"] = np.outer(per_instance, np.arange(1, STEPS + 1) / STEPS).astype(np.float32)
        entry = {"metric": float(per_instance.mean()), "per_instance": per_instance.tolist(), "curve": f"c{index}"}
        if shares:
            for offset, name in enumerate(("train actions tried", "test actions tried")):
                key = f"e{index}{offset}"
                curves[f"{key}_x"] = np.arange(1, STEPS + 1)
                curves[f"{key}_y"] = np.tile(np.arange(1, STEPS + 1) / STEPS * shares / (1 + offset), (INSTANCES, 1))
                entry.setdefault("extra_curves", {})[name] = key
        agents[agent] = entry
    not_applicable = {"model_sample": "8 actions, more than the head's 5"} if model.get("head") == "indexed" else {}
    num_20 = {"agents": {k: v for k, v in agents.items() if k not in not_applicable}, "not_applicable": not_applicable}
    document = {
        "version": RESULTS_VERSION, "task": task, "metric_name": "regret", "source_algorithm": "thompson",
        "curve_labels": ["step", "cumulative regret"], "step": 10,
        "evaluation": {"suites": ["num_10", "num_20"], "seed": 1},
        "suites": {
            "num_10": {"spec": {"arms": 10}, "agents": agents, "not_applicable": {}},
            "num_20": {"spec": {"arms": 20}, **num_20},
        },
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(document))
    np.savez(folder / "curves.npz", **curves)
    return run


def stratified_bootstrap_ci(matrix: np.ndarray, reps: int = 20_000) -> tuple[float, float]:
    """Resample the seeds (rows) within each instance (column) independently: the reference."""
    rng = np.random.default_rng(0)
    seeds, instances = matrix.shape
    picks = rng.integers(0, seeds, (reps, seeds, instances))
    means = matrix[picks, np.arange(instances)].mean(axis=(1, 2))
    return tuple(np.percentile(means, [2.5, 97.5]))


def test_report_gives_known_means_cis_and_iqm(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # instance i, seed s: i + 2 s + noise (so the bootstrap distribution has no wide discrete steps)
    noise = np.random.default_rng(1).normal(0, 0.5, (3, INSTANCES))
    spread = np.arange(INSTANCES)[None, :] + 2 * np.arange(3)[:, None] + noise
    for seed in range(3):
        make_run(runs, f"headless-s{seed}", spread[seed], seed=seed)
        # no spread over seeds: the CI must be the mean itself
        make_run(runs, f"ad-s{seed}", np.array([0.0, 10, 20, 30]), seed=seed, model={"head": "indexed"})
    out = write_report(ReportConfig(runs=(runs,), out=tmp_path / "report"))
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["suites"]["num_10"]["methods"]
    headless, ad = rows["Headless-AD"], rows["AD"]
    assert headless["seeds"] == 3 and headless["instances"] == INSTANCES
    assert headless["mean"] == pytest.approx(spread.mean())
    low, high = stratified_bootstrap_ci(spread)
    assert headless["ci"][0] == pytest.approx(low, abs=0.1) and headless["ci"][1] == pytest.approx(high, abs=0.1)
    assert headless["ci"][0] < spread.mean() - 0.5 and headless["ci"][1] > spread.mean() + 0.5
    assert ad["mean"] == pytest.approx(15.0) and ad["ci"] == pytest.approx([15.0, 15.0])
    assert ad["iqm"] == pytest.approx(15.0)  # middle half of {0, 10, 20, 30} x 3 seeds: 10s and 20s
    assert headless["iqm"] == pytest.approx(np.mean(np.sort(spread.ravel())[3:9]))
    assert summary["suites"]["num_10"]["references"] == {"thompson": 1.0, "random": 9.0}
    assert rows["AD"]["runs"] == [str(runs / f"ad-s{seed}") for seed in range(3)]
    assert summary["suites"]["num_20"]["methods"]["AD"]["not_applicable"] == "8 actions, more than the head's 5"
    report = (out / "report.md").read_text()
    assert "| AD | 3 | n/a | 8 actions, more than the head's 5 | |" in report
    assert f"{BOOTSTRAP_REPS} resamples" in report
    assert (out / "bars.png").stat().st_size > 0 and (out / "curves.png").stat().st_size > 0
    assert not (out / "extra_curves.png").exists() and "extra_curves.png" not in report
    # The runs named in another order: the same bootstrap, the same intervals.
    reordered = [runs / f"{method}-s{seed}" for seed in (2, 0, 1) for method in ("ad", "headless")]
    again = write_report(ReportConfig(runs=tuple(reordered), out=tmp_path / "again"))
    assert json.loads((again / "summary.json").read_text())["suites"] == summary["suites"]


def test_extra_curves_are_aggregated_over_seeds_and_drawn(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for seed, share in enumerate((0.4, 0.6)):
        make_run(runs, f"headless-s{seed}", np.arange(4.0), seed=seed, shares=share)
    out = write_report(ReportConfig(runs=(runs,), out=tmp_path / "report"))
    assert (out / "extra_curves.png").stat().st_size > 0
    assert "![extra curves per episode](extra_curves.png)" in (out / "report.md").read_text()
    group = group_runs([load_run(runs / f"headless-s{seed}", "*") for seed in range(2)])[0]
    episodes, matrix = collect_curves(group, "num_10", "model_sample", extra="test actions tried")
    assert matrix.shape == (2, INSTANCES, STEPS)
    np.testing.assert_array_equal(episodes, np.arange(1, STEPS + 1))
    np.testing.assert_allclose(matrix[:, 0, -1], [0.2, 0.3])  # the final share of each seed, halved for test
    assert collect_curves(group, "num_10", "model_sample", extra="goals reached") is None


def test_an_option_missing_from_an_older_config_counts_as_its_default(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run(runs, "old", np.arange(4.0))  # saved before model.action_dim existed
    make_run(runs, "new", np.arange(4.0), seed=1, model={"action_dim": 0})
    make_run(runs, "wide", np.arange(4.0), seed=2, model={"action_dim": 128})
    groups = group_runs([load_run(runs / name, "*") for name in ("old", "new", "wide")])
    assert [(group.label, len(group.runs)) for group in groups] == [
        ("Headless-AD", 2),
        ("Headless-AD (action_dim=128)", 1),
    ]


def test_runs_differing_only_in_their_default_sampling_are_one_group(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run(runs, "cold", np.arange(4.0), evaluation={"sample_temperature": 0.6})
    make_run(runs, "min-p", np.arange(4.0), seed=1, evaluation={"sample_temperature": 1.0, "sample_min_p": 0.2})
    groups = group_runs([load_run(runs / name, "*") for name in ("cold", "min-p")])
    assert [(group.label, len(group.runs)) for group in groups] == [("Headless-AD", 2)]


def test_runs_differing_in_config_are_separate_groups(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for arms in (10, 20):
        for seed in range(2):
            make_run(runs, f"ad{arms}-s{seed}", np.arange(4.0), seed=seed, model={"head": "indexed"},
                     collect={"train_suite": f"arms={arms}"})  # fmt: skip
    summary = json.loads((write_report(ReportConfig(runs=(runs,), out=tmp_path / "r")) / "summary.json").read_text())
    assert set(summary["suites"]["num_10"]["methods"]) == {"AD (arms=10)", "AD (arms=20)"}
    assert summary["suites"]["num_10"]["methods"]["AD (arms=10)"]["seeds"] == 2


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("families", [], "a report covers one family, got runs of 2"),
        ("plain", ["--methods", "Headless-ADD"], "unknown method 'Headless-ADD' in --methods"),
        ("suites", [], "suite num_10 was evaluated on other instances or seeds"),
        ("empty", [], "no finished evaluation"),
        ("checkpoints", [], "the evaluations mix checkpoints (best.pt, checkpoint.pt); choose one with --evaluations"),
    ],
)
def test_bad_report_input_fails_in_one_line(tmp_path, monkeypatch, capsys, setup, args, message) -> None:
    runs = tmp_path / "runs"
    make_run(runs, "a", np.arange(4.0))
    if setup == "families":
        make_run(runs, "b", np.arange(4.0), task="darkroom")
    if setup == "suites":
        other = make_run(runs, "b", np.arange(4.0), seed=1)
        results = other / "evaluations/step10_seed1/results.json"
        document = json.loads(results.read_text())
        document["suites"]["num_10"]["spec"] = {"arms": 10, "seed": 5}
        results.write_text(json.dumps(document))
    if setup == "checkpoints":  # one seed's checkpoint.pt and another's best.pt
        for name, file in (("a", "checkpoint.pt"), ("b", "best.pt")):
            run = runs / name if name == "a" else make_run(runs, name, np.arange(4.0), seed=1)
            results = run / "evaluations/step10_seed1/results.json"
            results.write_text(json.dumps({**json.loads(results.read_text()), "checkpoint": str(run / file)}))
    if setup == "empty":
        (runs / "c").mkdir()
        (runs / "c/config.json").write_text(json.dumps({"task": "bandit", "model": {}}))
    monkeypatch.setattr(sys, "argv", ["headless_ad", "report", str(runs), "--out", str(tmp_path / "r"), *args])
    with pytest.raises(SystemExit):
        main()
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_minutes_to_reach_the_threshold_come_from_the_training_events(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    runs = tmp_path / "runs"
    # seed 0 reaches 0.8 at its second evaluation (4 minutes), seed 1 never does
    for seed, scores in enumerate(([0.5, 0.85, 0.9], [0.3, 0.6, 0.7])):
        run = make_run(runs, f"headless-s{seed}", np.arange(4.0), seed=seed)
        with SummaryWriter(run) as writer:
            for step, (minutes, score) in enumerate(zip((2.0, 4.0, 6.0), scores, strict=True), start=1):
                writer.add_scalar("time/train_minutes", minutes + seed, step * 100)
                writer.add_scalar("eval/all_new/normalized_sample", score, step * 100)
            writer.add_scalar("eval/num_50/normalized_sample", 0.5, 50)  # no training time at step 50: left out
    out = write_report(ReportConfig(runs=(runs,), out=tmp_path / "report", threshold=0.8))
    table = json.loads((out / "summary.json").read_text())["minutes_to_threshold"]["Headless-AD"]
    assert list(table) == ["all_new"]
    row = table["all_new"]
    assert row["minutes"] == [4.0, None] and row["final"] == pytest.approx([0.9, 0.7])
    assert row["final_minutes"] == [6.0, 7.0]
    assert "| Headless-AD | all_new | 0.8 | 4.0, - | 0.90, 0.70 | 6.0, 7.0 |" in (out / "report.md").read_text()
    assert (out / "quality_minutes.png").stat().st_size > 0


def test_a_group_beside_one_of_its_method_that_cannot_act_is_drawn_as_a_variant() -> None:
    from headless_ad.report import Group, _variant_groups

    groups = [Group("AD", "a", {}, label="AD"), Group("AD", "b", {}, label="AD (actions=test)")]
    groups += [Group("AD", "c", {}, label="AD (arms=30)"), Group("AD", "d", {}, label="AD (actions=all)")]
    groups.append(Group("AD-permuted", "e", {}, label="AD-permuted"))
    summary = {
        "suites": {
            "test": {"methods": {"AD": {"not_applicable": "75 actions"}, "AD (actions=test)": {"mean": 0.9}}},
            "train": {"methods": {"AD": {"mean": 0.9}, "AD-permuted": {"mean": 0.7}}},
            "num_30": {"methods": {"AD (arms=30)": {"mean": 0.5}}},  # alone on its suite: plain AD
            "all": {"methods": {"AD": {"not_applicable": "125 actions"}, "AD (actions=all)": {"mean": 0.8}}},
        }
    }
    # each variant its own hatch and line style, counted within its method
    assert _variant_groups(summary, groups) == {"AD (actions=test)": 0, "AD (actions=all)": 1}
