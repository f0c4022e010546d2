"""Command line: `python -m headless_ad {collect,merge,train,evaluate,import-histories} --help`."""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Union

import tyro

from headless_ad.checkpoints import CheckpointError
from headless_ad.collect import CollectConfig, collect, merge
from headless_ad.evaluate import EvaluateConfig, evaluate_checkpoint
from headless_ad.help_text import clean_field_docstrings
from headless_ad.histories import HistoryStoreError
from headless_ad.history_import import ImportConfig, import_arrays
from headless_ad.locks import LockedError
from headless_ad.presets import PRESETS
from headless_ad.report import ReportConfig, write_report
from headless_ad.reproduce import ReproduceConfig, reproduce
from headless_ad.runs import TrainingDiverged
from headless_ad.train_config import TrainConfig
from headless_ad.trainer import train

clean_field_docstrings()

TrainPreset = Union[  # noqa: UP007 (tyro reads each Annotated member as one subcommand)
    tuple(
        Annotated[TrainConfig, tyro.conf.subcommand(name, default=config, description=description)]
        for name, (description, config) in PRESETS.items()
    )
]


def run_collect(config: Annotated[CollectConfig, tyro.conf.arg(name="")]) -> None:
    """Collect learning histories of a source algorithm."""
    collect(config)


@dataclass
class MergeConfig:
    parts: tuple[Path, ...]
    """Stores collected with --instances ranges that together cover every instance."""
    out: Path
    """Where to write the merged store: the same instances as one collection of the whole set (each
    part drew its reward noise and learner randomness from its own seed, so the histories match one
    collection in distribution, not bit for bit)."""
    overwrite: bool = False
    """Replace an existing store at --out."""


def run_merge(config: Annotated[MergeConfig, tyro.conf.arg(name="")]) -> None:
    """Merge history stores collected in parts (by instance range) into one."""
    merge(list(config.parts), config.out, config.overwrite)


def run_train(config: Annotated[TrainPreset, tyro.conf.arg(name="")]) -> None:
    """Train Headless-AD from a preset; every option can be overridden."""
    train(config)


def run_evaluate(config: Annotated[EvaluateConfig, tyro.conf.arg(name="")]) -> None:
    """Evaluate a checkpoint in-context on held-out suites, beside the source algorithm and random."""
    evaluate_checkpoint(config)


def check_preset(args: list[str]) -> None:
    """`train` takes a preset first; a wrong one would otherwise print every preset's whole help."""
    if not args or args[0] != "train" or len(args) < 2 or args[1] in ("-h", "--help"):
        return
    presets = ", ".join(PRESETS)
    if args[1].startswith("-"):
        raise ValueError(
            f"train needs a preset first: python -m headless_ad train <preset> [options]; presets: {presets}"
        )
    if args[1] not in PRESETS:
        close = difflib.get_close_matches(args[1], PRESETS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ValueError(f"unknown preset {args[1]!r}{hint}; presets: {presets}")


def run_report(config: Annotated[ReportConfig, tyro.conf.arg(name="")]) -> None:
    """Aggregate finished runs over seeds: a markdown report with bootstrap CIs and figures."""
    write_report(config)


def run_reproduce(config: Annotated[ReproduceConfig, tyro.conf.arg(name="")]) -> None:
    """Reproduce a family's comparison (Headless-AD, AD, ablations) over seeds, then report it."""
    reproduce(config, lambda runs, out: write_report(ReportConfig(runs=tuple(runs), out=out)))


def run_import(config: Annotated[ImportConfig, tyro.conf.arg(name="")]) -> None:
    """Import histories you already have (arrays per instance) into a history store to train on."""
    import_arrays(config)


def main() -> None:
    commands = {"collect": run_collect, "merge": run_merge, "train": run_train, "evaluate": run_evaluate}
    commands["import-histories"] = run_import
    commands["report"] = run_report
    commands["reproduce"] = run_reproduce
    try:
        check_preset(sys.argv[1:])
        tyro.extras.subcommand_cli_from_dict(commands, prog="python -m headless_ad")
    except (ValueError, OSError, HistoryStoreError, CheckpointError, LockedError, TrainingDiverged) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
