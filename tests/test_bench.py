"""`benchmarks/bench.py --quick` runs end to end (tiny sizes) and writes every figure; no speed is asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
