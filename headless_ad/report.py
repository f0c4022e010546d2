"""Aggregate finished runs over training seeds into a markdown report with figures; re-runs nothing.

Runs are grouped by method (read from each run's saved config, see methods.py) and by config: runs
whose configs differ only in their seed are one group. For each group and suite, the model's
per-instance metric from `evaluate`'s results forms a (seeds x instances) matrix; the report gives
its mean and a 95% stratified-bootstrap confidence interval from rliable (instances as strata,
training seeds resampled within each), and the interquartile mean. Learning curves get the same
bootstrap at every point. The source algorithm and random are reference lines.
"""

from __future__ import annotations

import fnmatch
import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from headless_ad.files import atomic_output, atomic_write_json, atomic_write_text
from headless_ad.methods import METHODS, method_name
from headless_ad.results import RESULTS_FILE, load_evaluation
from headless_ad.train_config import TrainConfig, nested_config, option_values
from headless_ad.training_curves import QualityCurve, quality_curves

IGNORED_KEYS = {
    "seed", "run_name", "resume", "threads", "device", "compile", "log_every", "checkpoint_every",
    "eval_every", "eval_suites", "eval_instances", "eval_horizon", "eval_seed", "eval_selection", "precision",
    "keep_best", "collect.threads", "collect.overwrite", "collect.out", "collect.instances", "eval_pictures",
    "sample_temperature", "final_sample_temperature", "anneal_episodes", "anneal_steps", "sample_min_p",
}  # fmt: skip
"""Options (named as train_config.option_values names them) that do not make runs different
methods (seeds, bookkeeping, hardware, and how evaluation samples by default: the evaluations a
report reads name their own sampling, and --evaluations picks the same one for every run)."""
COLOURS = {
    "Headless-AD": "#1f77b4",
    "AD": "#d62728",
    "AD-permuted": "#ff7f0e",
    "no prompt": "#2ca02c",
    "Gaussian embeddings": "#9467bd",
    "MSE loss": "#8c564b",
}
"""One colour per method, in every figure."""
BOOTSTRAP_REPS = 2_000
CURVE_REPS = 500
"""Fewer resamples for the bands of learning curves (one bootstrap covers all points of a curve)."""
CURVE_POINTS = 40


@dataclass
class ReportConfig:
    runs: tyro.conf.Positional[tuple[Path, ...]]
    """Run folders (runs/<name>), or folders holding run folders (e.g. runs/reproduce/bandit-cpu)."""
    out: Path = Path("runs/report")
    """Folder for report.md, summary.json and the figures."""
    selection: Literal["sample", "argmax"] = "sample"
    """Which of the model's evaluated selections to report."""
    methods: tuple[str, ...] = ()
    """Report only these methods (names as in the report: Headless-AD, AD, AD-permuted, no prompt,
    Gaussian embeddings, MSE loss); default: all."""
    evaluations: str = "*"
    """Glob over evaluation folder names (runs/<name>/evaluations/<folder>) to use, for runs
    evaluated more than once on a suite (`best.pt-*`: the evaluations of --keep-best's best.pt)."""
    seed: int = 0
    """Seeds the bootstrap."""
    threshold: float = 0.8
    """Normalized score whose first crossing during training is reported in training minutes
    (quality per CPU-minute; runs that evaluate during training, e.g. with --eval-every)."""
    title: str = ""


@dataclass
class Run:
    path: Path
    config: dict[str, Any]
    method: str
    suites: dict[str, dict[str, Any]]
    """Suite -> {"entry": results.json's suite entry, "document": its evaluation, "folder": name}."""


@dataclass
class Group:
    method: str
    key: str
    flat: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    label: str = ""


def find_runs(paths: tuple[Path, ...]) -> list[Path]:
    runs: list[Path] = []
    for path in paths:
        if (path / "config.json").is_file():
            runs.append(path)
        elif path.is_dir() and (found := sorted(p.parent for p in path.glob("*/config.json"))):
            runs += found
        else:
            raise FileNotFoundError(f"{path}: not a run folder (no config.json) nor a folder of runs")
    return runs


def load_run(path: Path, pattern: str) -> Run:
    try:
        config = nested_config(json.loads((path / "config.json").read_text()))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path / 'config.json'}: unreadable ({error})") from None
    suites: dict[str, dict[str, Any]] = {}
    folders = sorted(
        p.parent for p in (path / "evaluations").glob(f"*/{RESULTS_FILE}") if fnmatch.fnmatch(p.parent.name, pattern)
    )
    for folder in folders:
        document = load_evaluation(folder)
        for suite, entry in document["suites"].items():
            if suite in suites:
                raise ValueError(
                    f"{path}: suite {suite} was evaluated in {suites[suite]['folder']} and {folder.name}; "
                    "choose one with --evaluations GLOB"
                )
            suites[suite] = {"entry": entry, "document": document, "folder": folder.name}
    if not suites:
        raise ValueError(f"{path}: no finished evaluation matching {pattern!r} (evaluations/*/{RESULTS_FILE})")
    return Run(path, config, method_name(config), suites)


def group_runs(runs: list[Run]) -> list[Group]:
    groups: dict[str, Group] = {}
    # An option a run's config lacks (saved before the option existed) had its default's effect.
    defaults = option_values(TrainConfig())
    for run in runs:
        flat = {k: v for k, v in {**defaults, **option_values(run.config)}.items() if k not in IGNORED_KEYS}
        key = json.dumps(flat, sort_keys=True, default=str)
        groups.setdefault(key, Group(run.method, key, flat)).runs.append(run)
    ordered = sorted(groups.values(), key=lambda g: (METHODS.index(g.method), g.key))
    for group in ordered:  # the bootstrap resamples rows: the same runs in any order, the same report
        group.runs.sort(key=lambda run: str(run.path))
    for group in ordered:
        siblings = [g for g in ordered if g.method == group.method]
        differing = sorted(k for k in group.flat if len({json.dumps(g.flat.get(k), default=str) for g in siblings}) > 1)
        # Differences from a default (empty, 0, off) go unnamed: "Headless-AD" beside "(action_dim=128)".
        shown = [_describe(k, group.flat[k]) for k in differing if group.flat[k] not in ("", None, 0, False)]
        group.label = group.method + (f" ({', '.join(shown[:2])})" if shown else "")
    labels = [group.label for group in ordered]
    for index, group in enumerate(ordered):
        if labels.count(group.label) > 1:  # still ambiguous: number them
            group.label += f" #{labels[:index].count(group.label) + 1}"
    return ordered


def _describe(key: str, value: Any) -> str:
    """A config difference for a label: the training suite's own key=value as is (arms=10)."""
    return str(value) if key == "collect.train_suite" else f"{key.split('.')[-1]}={value}"


def check_comparable(runs: list[Run]) -> None:
    """One family, one checkpoint file (checkpoint.pt or best.pt), and each suite the same
    instances and evaluation seed in every run."""
    tasks = {run.config.get("task") for run in runs}
    if len(tasks) > 1:
        examples = ", ".join(f"{run.config.get('task')} ({run.path})" for run in runs[:: max(1, len(runs) // 4)])
        raise ValueError(f"a report covers one family, got runs of {len(tasks)}: {examples}")
    files = {
        Path(item["document"].get("checkpoint", "checkpoint.pt")).name for run in runs for item in run.suites.values()
    }
    if len(files) > 1:
        raise ValueError(
            f"the evaluations mix checkpoints ({', '.join(sorted(files))}); choose one with --evaluations GLOB "
            "(evaluations of best.pt are named best.pt-step...)"
        )
    seen: dict[str, tuple[str, Path]] = {}
    for run in runs:
        for suite, item in run.suites.items():
            evaluation = item["document"]["evaluation"]
            what = json.dumps([item["entry"]["spec"], evaluation["seed"]], sort_keys=True)
            if suite in seen and seen[suite][0] != what:
                raise ValueError(
                    f"suite {suite} was evaluated on other instances or seeds in {seen[suite][1]} and {run.path}"
                )
            seen.setdefault(suite, (what, run.path))


def interval(matrix: np.ndarray, seed: int, reps: int = BOOTSTRAP_REPS) -> tuple[np.ndarray, ...]:
    """Mean and 95% stratified-bootstrap CI (low, high) of a (seeds, instances[, points]) matrix,
    each an array (of one value, or one per point)."""
    from rliable import library as rly

    def mean(scores: np.ndarray) -> np.ndarray:
        return np.atleast_1d(np.nanmean(scores, axis=(0, 1)))

    # rliable's StratifiedBootstrap draws its resamples from numpy's global generator whatever
    # random_state says: seed that generator for the call (and put it back), so a report is
    # reproducible.
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():  # arch's notice about RandomState, which rliable passes on
            warnings.simplefilter("ignore", FutureWarning)
            points, intervals = rly.get_interval_estimates(
                {"x": matrix}, mean, reps=reps, random_state=np.random.RandomState(seed)
            )
    finally:
        np.random.set_state(saved)
    return points["x"], intervals["x"][0], intervals["x"][1]


def iqm(matrix: np.ndarray) -> float:
    from rliable import metrics

    values = matrix[np.isfinite(matrix)]
    return float(metrics.aggregate_iqm(values[None, :])) if values.size else float("nan")


def collect_matrix(group: Group, suite: str, agent: str) -> tuple[np.ndarray | None, str]:
    """(seeds, instances) per-instance metric of the group's runs on `suite`, or (None, reason)."""
    rows = []
    for run in group.runs:
        item = run.suites.get(suite)
        if item is None:
            return None, ""
        entry = item["entry"]
        if agent in entry["not_applicable"]:
            return None, entry["not_applicable"][agent]
        if agent not in entry["agents"]:
            return None, f"{run.path} has no {agent} on {suite}"
        per_instance = entry["agents"][agent]["per_instance"]
        if per_instance is None:
            raise ValueError(f"{run.path}: {suite} has no per-instance results (a task without instance_metrics)")
        rows.append(np.array([np.nan if v is None else v for v in per_instance], dtype=np.float64))
    return np.stack(rows), ""


def collect_curves(
    group: Group, suite: str, agent: str, extra: str | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, (seeds, instances, points)) over the points every run reached, thinned to CURVE_POINTS:
    the agent's learning curve, or its extra curve of that name (the task's `extra_curves`)."""
    curves = []
    for run in group.runs:
        item = run.suites.get(suite)
        if item is None or agent not in item["entry"]["agents"]:
            return None
        key = _curve_key(item["entry"]["agents"][agent], extra)
        if key is None:
            return None
        curves.append(item["document"]["curves"][key])
    length = min(y.shape[1] for _, y in curves)
    if length == 0:
        return None
    keep = np.unique(np.linspace(0, length - 1, min(CURVE_POINTS, length)).round().astype(int))
    return curves[0][0][keep], np.stack([y[:, keep] for _, y in curves])


def _curve_key(entry: dict[str, Any], extra: str | None) -> str | None:
    """The curves.npz key of an agent's learning curve, or of its extra curve `extra`; None if absent
    (results saved before extra curves existed have none)."""
    return entry["curve"] if extra is None else entry.get("extra_curves", {}).get(extra)


def write_report(config: ReportConfig) -> Path:
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r} in --methods; known: {', '.join(METHODS)}")
    runs = [load_run(path, config.evaluations) for path in find_runs(config.runs)]
    if config.methods:
        runs = [run for run in runs if run.method in config.methods]
        if not runs:
            raise ValueError(f"no run of the methods {', '.join(config.methods)}")
    check_comparable(runs)
    groups = group_runs(runs)
    first = runs[0].suites[next(iter(runs[0].suites))]["document"]
    agent = f"model_{config.selection}"
    suites = sorted({s for run in runs for s in run.suites}, key=_suite_order(runs))
    source, random_name = first["source_algorithm"], "random"

    summary: dict[str, Any] = {"task": first["task"], "metric": first["metric_name"], "selection": config.selection}
    summary["suites"] = {}
    for suite in suites:
        references = _references(runs, suite, [source, random_name])
        rows = {}
        for group in groups:
            matrix, reason = collect_matrix(group, suite, agent)
            if matrix is None:
                if reason:
                    rows[group.label] = {"method": group.method, "not_applicable": reason, "seeds": len(group.runs)}
                continue
            point, low, high = interval(matrix, config.seed)
            rows[group.label] = {
                "method": group.method,
                "seeds": matrix.shape[0],
                "instances": matrix.shape[1],
                "mean": float(point[0]),
                "ci": [float(low[0]), float(high[0])],
                "iqm": iqm(matrix),
                "runs": [str(run.path) for run in group.runs],
            }
        summary["suites"][suite] = {"references": references, "methods": rows}

    config.out.mkdir(parents=True, exist_ok=True)
    lower_is_better = _lower_is_better(summary)
    bars = _bars_figure(summary, groups, first["metric_name"], source)
    _save_figure(bars, config.out / "bars.png")
    variants = _variant_groups(summary, groups)
    figures = {"bars.png": "bars per suite"}
    curves = _curves_figure(groups, suites, agent, runs, first, source, config.seed, variants)
    if curves is not None:
        _save_figure(curves, config.out / "curves.png")
        figures["curves.png"] = "learning curves"
    tried = _extra_curves_figure(groups, suites, agent, runs, source, config.seed, variants)
    if tried is not None:
        _save_figure(tried, config.out / "extra_curves.png")
        figures["extra_curves.png"] = "extra curves per episode"
    quality = {group.label: [quality_curves(run.path, config.selection) for run in group.runs] for group in groups}
    if any(curves for runs_curves in quality.values() for curves in runs_curves):
        summary["minutes_to_threshold"] = _minutes_to_threshold(quality, config.threshold)
        _save_figure(_quality_figure(quality, groups, config.threshold), config.out / "quality_minutes.png")
        figures["quality_minutes.png"] = "normalized score against training minutes"
    atomic_write_json(config.out / "summary.json", summary)
    text = _markdown(config, summary, groups, lower_is_better, source, figures)
    atomic_write_text(config.out / "report.md", text)
    print(text)
    print(f"report: {config.out / 'report.md'}")
    return config.out


def _suite_order(runs: list[Run]):
    order: list[str] = []
    for run in runs:
        for item in run.suites.values():
            for suite in item["document"]["evaluation"]["suites"]:
                if suite not in order:
                    order.append(suite)
    return lambda suite: (order.index(suite) if suite in order else len(order), suite)


def _references(runs: list[Run], suite: str, names: list[str]) -> dict[str, float]:
    """Mean metric of the baselines on `suite` (the same instances and seeds in every run)."""
    for run in runs:
        if suite in run.suites:
            agents = run.suites[suite]["entry"]["agents"]
            return {name: float(agents[name]["metric"]) for name in names if name in agents}
    return {}


def _lower_is_better(summary: dict[str, Any]) -> bool:
    for suite in summary["suites"].values():
        references = suite["references"]
        if len(references) == 2:
            source, random = references.values()
            return source < random
    return True


def _save_figure(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)


def _bars_figure(summary: dict[str, Any], groups: list[Group], metric: str, source: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suites = list(summary["suites"])
    figure, axis = plt.subplots(figsize=(max(5.0, 1.6 * len(suites) + 2.5), 3.6))
    hatched = _variant_groups(summary, groups)
    legend: dict[str, Any] = {}
    for index, suite in enumerate(suites):
        rows = summary["suites"][suite]["methods"]
        labels = [g.label for g in groups if g.label in rows]
        width = 0.8 / max(1, len(labels))
        for slot, label in enumerate(labels):
            row = rows[label]
            x = index - 0.4 + width * (slot + 0.5)
            colour = COLOURS[row["method"]]
            if "not_applicable" in row:
                axis.text(x, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize=7, color=colour)
                continue
            error = [[row["mean"] - row["ci"][0]], [row["ci"][1] - row["mean"]]]
            hatch = VARIANT_HATCHES[hatched[label] % len(VARIANT_HATCHES)] if label in hatched else None
            axis.bar(x, row["mean"], width, color=colour, yerr=error, capsize=2, linewidth=0, hatch=hatch,
                     edgecolor="white")  # fmt: skip
            name = label if label in hatched else row["method"]
            legend.setdefault(name, plt.Rectangle((0, 0), 1, 1, facecolor=colour, hatch=hatch, edgecolor="white"))
        references = summary["suites"][suite]["references"]
        for name, style in ((source, "--"), ("random", ":")):
            if name in references:
                axis.hlines(references[name], index - 0.45, index + 0.45, colors="k", linestyles=style, linewidth=1)
    legend[source] = plt.Line2D([], [], color="k", linestyle="--")
    legend["random"] = plt.Line2D([], [], color="k", linestyle=":")
    axis.legend(legend.values(), legend.keys(), loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    axis.set_xticks(range(len(suites)), suites, fontsize=8)
    axis.set_xlabel("evaluation suite")
    axis.set_ylabel(metric)
    axis.set_title("mean over training seeds and instances, 95% bootstrap CI", fontsize=9)
    figure.tight_layout()
    return figure


VARIANT_HATCHES = ("//", "xx", "..", "\\\\")
VARIANT_LINES = ("-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)))


def _variant_groups(summary: dict[str, Any], groups: list[Group]) -> dict[str, int]:
    """{label: index among its method's variants} of groups that share a suite with an earlier
    group of their method (one that could act there or not: Darkroom's AD trained on the test
    actions beside the AD that cannot act on them): each drawn with its own hatch (bars) or line
    style (curves) and named in the legend, the colour staying the method's."""
    variants: dict[str, int] = {}
    counts: dict[str, int] = {}
    for data in summary["suites"].values():
        firsts: dict[str, str] = {}
        for group in groups:
            if group.label not in data["methods"]:
                continue
            if firsts.setdefault(group.method, group.label) != group.label and group.label not in variants:
                variants[group.label] = counts.get(group.method, 0)
                counts[group.method] = variants[group.label] + 1
    return variants


def _curves_figure(groups, suites, agent, runs, first, source, seed, variants):
    import matplotlib

    matplotlib.use("Agg")

    from headless_ad.plotting import outside_legend, panel_grid

    panels = []
    for suite in suites:
        lines = []
        for group in groups:
            curves = collect_curves(group, suite, agent)
            if curves is not None:
                x, matrix = curves
                mean, low, high = interval(matrix, seed, CURVE_REPS)
                lines.append((group, x, mean, low, high))
        if lines:
            panels.append((suite, lines))
    if not panels:
        return None
    x_label, y_label = first["curve_labels"]
    figure, axes = panel_grid(len(panels), y_label)
    seen: dict[str, Any] = {}
    for axis, (suite, lines) in zip(axes, panels, strict=True):
        for group, x, mean, low, high in lines:
            colour = COLOURS[group.method]
            variant = group.label in variants
            style = VARIANT_LINES[variants[group.label] % len(VARIANT_LINES)] if variant else "-"
            (line,) = axis.plot(x, mean, color=colour, linewidth=1.2, linestyle=style)
            axis.fill_between(x, low, high, color=colour, alpha=0.2, linewidth=0)
            seen.setdefault(group.label if variant else group.method, line)
        for name, style in ((source, "--"), ("random", ":")):
            reference = _reference_curve(runs, suite, name)
            if reference is not None:
                (line,) = axis.plot(*reference, color="k", linestyle=style, linewidth=1)
                seen.setdefault(name, line)
        axis.set_title(suite, fontsize=9)
        axis.set_xlabel(x_label + ("s" if x_label in ("step", "episode") else ""))
    outside_legend(figure, list(seen.values()), list(seen.keys()))
    return figure


def _extra_curves_figure(groups, suites, agent, runs, source, seed, variants):
    """The tasks' extra curves (Darkroom's share of train and of test actions tried, over episodes),
    one panel per suite that has them: a colour per method, a line style per curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from headless_ad.plotting import outside_legend, panel_grid

    panels = []
    for suite in suites:
        names = _extra_curve_names(runs, suite)
        lines = []
        for group in groups:
            for name in names:
                curves = collect_curves(group, suite, agent, extra=name)
                if curves is not None:
                    x, matrix = curves
                    lines.append((group, name, x, *interval(matrix, seed, CURVE_REPS)))
        if lines:
            panels.append((suite, names, lines))
    if not panels:
        return None
    styles = ["-", "--", ":", "-."]
    figure, axes = panel_grid(len(panels), "share of the actions (0-1)")
    legend: dict[str, Any] = {}
    for axis, (suite, names, lines) in zip(axes, panels, strict=True):
        for group, name, x, mean, low, high in lines:
            colour = COLOURS[group.method]
            axis.plot(x, mean, color=colour, linewidth=1.2, linestyle=styles[names.index(name) % len(styles)])
            axis.fill_between(x, low, high, color=colour, alpha=0.2, linewidth=0)
            method = group.label if group.label in variants else group.method
            legend.setdefault(method, plt.Line2D([], [], color=colour))
        for name in names:
            reference = _reference_curve(runs, suite, source, extra=name)
            if reference is not None:
                axis.plot(*reference, color="k", linewidth=1, linestyle=styles[names.index(name) % len(styles)])
                legend.setdefault(source, plt.Line2D([], [], color="k"))
        for name in names:
            legend.setdefault(name, plt.Line2D([], [], color="grey", linestyle=styles[names.index(name) % len(styles)]))
        axis.set_title(suite, fontsize=9)
        axis.set_xlabel("episodes")
        axis.set_ylim(0, 1.02)
        axis.xaxis.get_major_locator().set_params(integer=True)
    outside_legend(figure, list(legend.values()), list(legend.keys()))
    return figure


def _minutes_to_threshold(quality: dict[str, list[dict[str, QualityCurve]]], threshold: float) -> dict[str, Any]:
    """{group: {suite: {"threshold", "minutes" per seed (None: never reached), "final" score per seed}}}."""
    table: dict[str, Any] = {}
    for label, runs_curves in quality.items():
        suites = sorted({suite for curves in runs_curves for suite in curves})
        for suite in suites:
            curves = [curves[suite] for curves in runs_curves if suite in curves]
            table.setdefault(label, {})[suite] = {
                "threshold": threshold,
                "minutes": [curve.minutes_to_reach(threshold) for curve in curves],
                "final": [float(curve.scores[-1]) for curve in curves],
                "final_minutes": [float(curve.minutes[-1]) for curve in curves],
            }
    return table


def _quality_figure(quality: dict[str, list[dict[str, QualityCurve]]], groups: list[Group], threshold: float):
    """Normalized score against training minutes, a panel per suite: each seed thin, their mean
    (at the steps every seed evaluated) thick, in the method's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from headless_ad.plotting import outside_legend, panel_grid

    suites = sorted({suite for runs_curves in quality.values() for curves in runs_curves for suite in curves})
    figure, axes = panel_grid(len(suites), "normalized score")
    legend: dict[str, Any] = {}
    for axis, suite in zip(axes, suites, strict=True):
        for group in groups:
            curves = [curves[suite] for curves in quality[group.label] if suite in curves]
            if not curves:
                continue
            colour = COLOURS[group.method]
            for curve in curves:
                axis.plot(curve.minutes, curve.scores, color=colour, linewidth=0.6, alpha=0.5)
            common = sorted(set.intersection(*(set(curve.steps.tolist()) for curve in curves)))
            rows = [np.isin(curve.steps, common) for curve in curves]
            minutes = np.mean([curve.minutes[row] for curve, row in zip(curves, rows, strict=True)], axis=0)
            scores = np.mean([curve.scores[row] for curve, row in zip(curves, rows, strict=True)], axis=0)
            (line,) = axis.plot(minutes, scores, color=colour, linewidth=1.6, marker="o", markersize=3)
            legend.setdefault(f"{group.label} (mean of {len(curves)})", line)
        axis.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        axis.set_title(suite, fontsize=9)
        axis.set_xlabel("training minutes (wall)")
    legend[f"threshold {threshold:g}"] = plt.Line2D([], [], color="grey", linestyle=":")
    outside_legend(figure, list(legend.values()), list(legend.keys()))
    return figure


def _extra_curve_names(runs: list[Run], suite: str) -> list[str]:
    names: list[str] = []
    for run in runs:
        if suite in run.suites:
            for entry in run.suites[suite]["entry"]["agents"].values():
                names += [name for name in entry.get("extra_curves", {}) if name not in names]
    return names


def _reference_curve(runs: list[Run], suite: str, name: str, extra: str | None = None):
    """A baseline's curve (or its extra curve), averaged over instances: the same in every run."""
    for run in runs:
        item = run.suites.get(suite)
        entry = item["entry"]["agents"].get(name) if item else None
        key = None if entry is None else _curve_key(entry, extra)
        if key is not None:
            x, y = item["document"]["curves"][key]
            return x, np.nanmean(y, axis=0)
    return None


def _markdown(config, summary, groups, lower_is_better, source, figures: dict[str, str]) -> str:
    better = "lower is better" if lower_is_better else "higher is better"
    lines = [
        f"# {config.title or 'Report: ' + summary['task']}",
        "",
        f"Command: `python -m headless_ad {' '.join(sys.argv[1:])}`" if sys.argv[1:] else "",
        "",
        f"Metric: {summary['metric']} ({better}), the model's `{summary['selection']}` selection. "
        "Mean over training seeds and instances; 95% stratified-bootstrap CI (rliable, "
        f"{BOOTSTRAP_REPS} resamples of the seeds within each instance); IQM over all seed x instance values. "
        "With one seed the CI is a point.",
        "",
        "## Groups",
        "",
        "| label | method | seeds | runs |",
        "|---|---|---|---|",
    ]
    lines += [f"| {g.label} | {g.method} | {len(g.runs)} | {', '.join(str(r.path) for r in g.runs)} |" for g in groups]
    for suite, data in summary["suites"].items():
        references = data["references"]
        lines += ["", f"## {suite}", "", "| method | seeds | mean | 95% CI | IQM |", "|---|---|---|---|---|"]
        for label, row in data["methods"].items():
            if "not_applicable" in row:
                lines.append(f"| {label} | {row['seeds']} | n/a | {row['not_applicable']} | |")
            else:
                low, high = row["ci"]
                lines.append(
                    f"| {label} | {row['seeds']} | {row['mean']:.2f} | [{low:.2f}, {high:.2f}] | {row['iqm']:.2f} |"
                )
        for name, value in references.items():
            lines.append(f"| {name} (reference) | | {value:.2f} | | |")
    if "minutes_to_threshold" in summary:
        lines += [
            "",
            "## Quality per training minute",
            "",
            "Training minutes (wall; collection included, in-training evaluation excluded) at the first "
            "in-training evaluation that reached the threshold, per training seed (- : never reached).",
            "",
            "| method | suite | threshold | minutes per seed | final score per seed | at minutes |",
            "|---|---|---|---|---|---|",
        ]
        for label, suites in summary["minutes_to_threshold"].items():
            for suite, row in suites.items():
                reached = ", ".join("-" if m is None else f"{m:.1f}" for m in row["minutes"])
                finals = ", ".join(f"{v:.2f}" for v in row["final"])
                at = ", ".join(f"{m:.1f}" for m in row["final_minutes"])
                lines.append(f"| {label} | {suite} | {row['threshold']:g} | {reached} | {finals} | {at} |")
    for path, caption in figures.items():
        lines += ["", f"![{caption}]({path})"]
    return "\n".join(lines) + "\n"
