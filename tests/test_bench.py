"""`benchmarks/bench.py --quick` runs end to end (tiny sizes) and writes every figure; no speed is asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_bench(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # bench.py imports its sibling train_throughput.py
    spec = importlib.util.spec_from_file_location("bench", BENCHMARKS / "bench.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_bench_writes_every_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "RESULTS.md"
    monkeypatch.setattr(sys, "argv", ["bench.py", "--quick", "--threads", "1", "--out", str(out)])
    load_bench(monkeypatch).main()

    text = out.read_text()
    printed = capsys.readouterr().out
    rows = [
        "collection, Thompson Sampling",
        "collection, tabular Q-learning",
        "in-context evaluation, bandit",
        "in-context evaluation, Darkroom",
        "tokens/s",
        "model FLOP utilisation",
        "collect bandit",
        "collect Darkroom as `darkroom-paper` does",
        "train `darkroom-paper` on it, 3 steps",
    ]
    for row in rows:
        assert row in text, row
        assert row in printed, row  # printed as measured, not only written at the end
    ratios = [line.rsplit("|", 2)[1] for line in text.splitlines() if line.startswith("| collection")]
    assert all(ratio.strip().endswith("x") for ratio in ratios)
    # The training run reused the store collected with the preset's own recipe, and cleaned up after itself.
    assert "reusing runs/bench-paper/darkroom" in printed
    assert not (tmp_path / "runs" / "bench-paper").exists()
    assert not (tmp_path / "runs" / "bench-paper-train").exists()


def test_thompson_gap_recovers_thompson_samplings_arm_probabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    """After two wins on arm 0 the posteriors are Beta(3, 1) and Beta(1, 1): arm 0 is drawn with
    probability 3/4 (test_learners); before any pull, each of the offered arms with 1/K."""
    spec = importlib.util.spec_from_file_location("thompson_gap", BENCHMARKS / "thompson_gap.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "thompson_gap", module)
    spec.loader.exec_module(module)
    actions = np.array([[0, 0, 1], [2, 1, 0]])
    rewards = np.array([[1, 1, 0], [0, 0, 0]], dtype=np.float32)
    mask = np.array([[True, True, False], [True, True, True]])
    probabilities = module.thompson_probabilities(actions, rewards, mask, 20_000, np.random.default_rng(0))
    np.testing.assert_allclose(probabilities[0, 0], [0.5, 0.5, 0.0], atol=0.02)
    np.testing.assert_allclose(probabilities[1, 0], [1 / 3, 1 / 3, 1 / 3], atol=0.02)
    np.testing.assert_allclose(probabilities[0, 2], [0.75, 0.25, 0.0], atol=0.02)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-6)


def test_imitation_accuracy_reports_every_store_and_step_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tiny contextual model, read on two stores: one line per store, whose step ranges tile the
    window (their step-weighted mean is the whole window's accuracy)."""
    from headless_ad import PRESETS, replace_options, train
    from headless_ad.collect import CollectConfig, collect
    from headless_ad.model import ModelConfig

    monkeypatch.chdir(tmp_path)
    preset = PRESETS["contextual-bandit"][1]
    config = replace_options(
        preset, run_name="tiny", model=ModelConfig(d_model=16, n_layers=1, n_heads=2), seq_len=40, batch_size=4,
        total_steps=4, warmup_steps=1, eval_every=0, eval_suites=(), threads=1,
        collect=CollectConfig(task="contextual_bandit", num_instances=16, horizon=40),
    )  # fmt: skip
    checkpoint = train(config)
    stores = []
    for arms in (4, 9):
        store = tmp_path / f"k{arms}"
        collect(CollectConfig(task="contextual_bandit", num_instances=8, horizon=40, seed=7,
                              train_suite=f"arms={arms}", out=store, threads=1))  # fmt: skip
        stores.append(str(store))
    spec = importlib.util.spec_from_file_location("imitation_accuracy", BENCHMARKS / "imitation_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "imitation_accuracy", module)
    spec.loader.exec_module(module)
    capsys.readouterr()
    module.main(module.Config(checkpoint=checkpoint, stores=tuple(map(Path, stores)), windows=30, step_edges=(10, 25)))
    lines = capsys.readouterr().out.strip().splitlines()
    assert "windows of 40 steps" in lines[0] and len(lines) == 3
    for line, store in zip(lines[1:], stores, strict=True):
        head, ranges = line.split("|")
        assert head.startswith(store)
        overall = float(head.split()[-1])
        values = [float(part.split()[-1]) for part in ranges.split("  ") if part.strip()]
        assert len(values) == 3 and all(0 <= value <= 1 for value in values)
        assert np.dot(values, [10, 15, 15]) / 40 == pytest.approx(overall, abs=2e-3)


def load_linucb_imitation(monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("linucb_imitation", BENCHMARKS / "linucb_imitation.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "linucb_imitation", module)
    spec.loader.exec_module(module)
    return module


def test_linucb_ties_start_with_every_arm_tied(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before any pull every arm scores alpha * |x|: the ceiling is 1/K; it never leaves (0, 1]."""
    module = load_linucb_imitation(monkeypatch)
    ceiling = module.tie_ceiling(num_arms=5, instances=20, seed=3)
    np.testing.assert_allclose(ceiling[:, 0], 1 / 5)
    assert ceiling.min() >= 1 / 5 and ceiling.max() == 1.0 and ceiling[:, -50:].mean() > 0.9


def test_linucb_replay_follows_linucb_histories_and_refuses_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headless_ad.collect import CollectConfig, collect
    from headless_ad.histories import load_store

    module = load_linucb_imitation(monkeypatch)
    stores = {}
    for source in ("linucb", "random"):
        stores[source] = load_store(collect(CollectConfig(
            task="contextual_bandit", source=source, num_instances=6, horizon=30, train_suite="arms=5",
            out=tmp_path / source, threads=1,
        )))  # fmt: skip
    margins, tied = module.replay_linucb(stores["linucb"])
    assert tied[:, 0].all() and (margins[:, 0] == 0).all()  # every arm ties before the first pull
    assert (margins[:, -10:] > 0).mean() > 0.9
    with pytest.raises(SystemExit, match="not LinUCB histories"):
        module.replay_linucb(stores["random"])
