"""`benchmarks/darkroom_far_goals.py` groups a saved evaluation's rooms by goal distance."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from headless_ad.tasks.darkroom import DarkroomSuite

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "darkroom_far_goals.py"


def run_script(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    spec = importlib.util.spec_from_file_location("darkroom_far_goals", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["darkroom_far_goals.py", *args])
    module.main()


def test_far_rooms_are_split_from_near_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = DarkroomSuite(num_instances=60, goals="test", actions="test", seed=5)
    goals, _ = suite.sample()
    row, col = np.divmod(goals, suite.size)
    far = np.abs(row - 4) + np.abs(col - 4) >= 7
    assert 0 < far.sum() < far.size
    # The model fails every far room and matches Q-learning on the near ones.
    model = np.where(far, 0.0, 1.0)
    agents = {
        "model_sample": {"per_instance": model.tolist()},
        "q_learning": {"per_instance": [1.0] * far.size},
        "random": {"per_instance": [0.0] * far.size},
    }
    results = {"task": "darkroom", "suites": {"test_goals/test": {"spec": asdict(suite), "agents": agents}}}
    (tmp_path / "results.json").write_text(json.dumps(results))

    run_script(monkeypatch, str(tmp_path))

    lines = capsys.readouterr().out.splitlines()
    assert f"| far | {far.sum()} | 0.00 | {far.sum()} |" in lines
    assert f"| near | {(~far).sum()} | 1.00 | 0 |" in lines
    assert f"| all | {far.size} | {1 - far.mean():.2f} | {far.sum()} |" in lines


def test_a_folder_without_results_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit):
        run_script(monkeypatch, str(tmp_path / "missing"))


def test_a_corrupt_results_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(SystemExit):
        run_script(monkeypatch, str(tmp_path))
