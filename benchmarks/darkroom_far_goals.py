"""A saved Darkroom evaluation split by how far each room's goal lies from the start.

    python benchmarks/darkroom_far_goals.py runs/dk30/evaluations/<folder> --suite test_goals/test

Reads the per-room returns `evaluate` saved (nothing is re-run) and reports, for far goals (7-8
cells from the centre, three 3-move actions away) and near ones: the number of rooms, the
normalized return of the group ((model - random) / (Q-learning - random), the group's means) and
the rooms the model failed (return under 0.3 over the last 50 episodes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from headless_ad.tasks.darkroom import DarkroomSuite

FAR = 7
FAILED = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("evaluation", type=Path, help="an evaluation folder (holding results.json)")
    parser.add_argument("--suite", default="test_goals/test")
    args = parser.parse_args()
    path = args.evaluation / "results.json"
    if not path.is_file():
        parser.error(f"{path}: not found (give an evaluation folder, runs/<run>/evaluations/<folder>)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        parser.error(f"{path}: not readable as JSON ({error})")
    if results.get("task") != "darkroom" or args.suite not in results.get("suites", {}):
        parser.error(f"{args.evaluation}: no Darkroom evaluation of {args.suite}")
    entry = results["suites"][args.suite]
    goals, _ = DarkroomSuite(**entry["spec"]).sample()
    size = entry["spec"]["size"]
    row, col = np.divmod(goals, size)
    far = np.abs(row - size // 2) + np.abs(col - size // 2) >= FAR
    returns = {name: np.asarray(agent["per_instance"]) for name, agent in entry["agents"].items()}
    print("| goals | rooms | normalized | failed |\n|---|---|---|---|")
    for name, rooms in (("far", far), ("near", ~far), ("all", np.ones_like(far))):
        model, source, random = (returns[agent][rooms].mean() for agent in ("model_sample", "q_learning", "random"))
        failed = int((returns["model_sample"][rooms] < FAILED).sum())
        print(f"| {name} | {rooms.sum()} | {(model - random) / (source - random):.2f} | {failed} |")


if __name__ == "__main__":
    main()
