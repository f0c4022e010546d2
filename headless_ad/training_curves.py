"""Quality per training minute: a run's in-training evaluations against the wall time it had spent
training (collection included, evaluation excluded), read from its TensorBoard events."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIME_TAG = "time/train_minutes"


@dataclass
class QualityCurve:
    steps: np.ndarray
    minutes: np.ndarray
    """Training minutes at each evaluated step."""
    scores: np.ndarray
    """Normalized score at each evaluated step."""

    def minutes_to_reach(self, threshold: float) -> float | None:
        """Training minutes at the first evaluation scoring at least `threshold`; None if none did."""
        reached = np.flatnonzero(self.scores >= threshold)
        return float(self.minutes[reached[0]]) if reached.size else None


def quality_curves(run_dir: Path, selection: str) -> dict[str, QualityCurve]:
    """{suite: curve} of the normalized score of the model's `selection` (sample, argmax) at every
    in-training evaluation; empty for runs trained before the training time was logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    if TIME_TAG not in tags:
        return {}
    # A resumed run may log a step twice (steps redone after the last checkpoint): the last counts.
    minutes = {event.step: event.value for event in events.Scalars(TIME_TAG)}
    suffix = f"/normalized_{selection}"
    curves = {}
    for tag in tags:
        if tag.startswith("eval/") and tag.endswith(suffix):
            scores = {event.step: event.value for event in events.Scalars(tag) if event.step in minutes}
            if not scores:  # e.g. a suite evaluated only before a resume of a run older than the clock
                continue
            steps = np.array(sorted(scores))
            curves[tag[len("eval/") : -len(suffix)]] = QualityCurve(
                steps, np.array([minutes[s] for s in steps]), np.array([scores[s] for s in steps])
            )
    return curves
