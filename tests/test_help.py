"""The command line explains itself: every option of every subcommand has help text."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys

import pytest

from headless_ad import __main__ as cli_module
from headless_ad.__main__ import main
from headless_ad.presets import PRESETS
from headless_ad.train_config import SECTIONS

SUBCOMMANDS = [["collect"], ["merge"], ["evaluate"], ["import-histories"], *(["train", name] for name in PRESETS)]
BOX = "│┃|╭╮╰╯─ "


def help_text(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    monkeypatch.setenv("COLUMNS", "80")  # one panel, help under each option
    monkeypatch.setattr(sys, "argv", ["headless_ad", *args, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def options_without_help(text: str) -> list[str]:
    """Options whose entry holds only a default. tyro writes `--flag METAVAR  help (default: x)`,
    the help starting on the option's line or on the next one."""
    cells = [line.strip(BOX) for line in text.splitlines()]
    missing = []
    for option, following in zip(cells, [*cells[1:], ""], strict=True):
        if not re.match(r"--[a-z]", option):
            continue
        flag, *rest = re.split(r"\s{2,}", option, maxsplit=1)
        help_start = rest[0] if rest else following
        if not help_start or help_start.startswith(("(default:", "--")):
            missing.append(flag.split()[0])
    return missing


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=" ".join)
def test_every_option_has_help_text(monkeypatch, capsys, args: list[str]) -> None:
    text = help_text(monkeypatch, capsys, args)
    assert "--" in text
    assert options_without_help(text) == []


def test_the_checker_finds_an_option_without_help() -> None:
    text = (
        "│ --documented INT   Says what. (default: 1) │\n│ --wrapped FLOAT │\n│      Says why. (default: 2) │\n"
        "│ --bare INT   (default: 3) │\n│ --bare-below STR │\n│      (default: x) │\n│ --last │"
    )
    assert options_without_help(text) == ["--bare", "--bare-below", "--last"]


def test_fields_the_program_sets_are_hidden(monkeypatch, capsys) -> None:
    text = help_text(monkeypatch, capsys, ["train", "darkroom"])
    for internal in ("--model.max-steps", "--model.observation-kind", "--model.observation-size"):
        assert internal not in text


def test_console_script_runs_help() -> None:
    script = shutil.which("headless-ad") or shutil.which("headless-ad", path=str(sys.executable).rsplit("/", 1)[0])
    if script is None:
        pytest.fail("the headless-ad console script is not installed (pip install -e .)")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout and "evaluate" in result.stdout


def test_train_options_are_grouped_under_headings(monkeypatch, capsys) -> None:
    text = help_text(monkeypatch, capsys, ["train", "bandit"])
    panels = ["collect", "data", "model", "scoring", "optimisation", "evaluation", "runtime"]
    starts = [text.index(f"{panel} options") for panel in panels]
    assert starts == sorted(starts)
    for panel, start, end in zip(panels, starts, [*starts[1:], len(text)], strict=True):
        if panel in SECTIONS:  # its options keep their flags, without the section's prefix
            for field in dataclasses.fields(SECTIONS[panel]):
                assert re.search(rf"--{field.name.replace('_', '-')}[ ,\n]", text[start:end]), field.name
            assert f"--{panel}." not in text


def test_train_flags_set_the_options_of_their_sections(monkeypatch) -> None:
    trained = []
    monkeypatch.setattr(cli_module, "train", trained.append)
    args = ["--seq-len", "7", "--batch-size", "3", "--eval-every", "9", "--threads", "1", "--seed", "4"]
    monkeypatch.setattr(sys, "argv", ["headless_ad", "train", "bandit", *args, "--collect.horizon", "11"])
    main()
    (config,) = trained
    assert (config.data.seq_len, config.optimisation.batch_size, config.evaluation.eval_every) == (7, 3, 9)
    assert (config.runtime.threads, config.seed, config.collect.horizon) == (1, 4, 11)
    assert config.evaluation.sample_temperature == PRESETS["bandit"][1].evaluation.sample_temperature


def test_a_docstring_wrapped_in_the_source_is_one_paragraph_of_help() -> None:
    from tyro._docstrings import get_field_docstring

    from headless_ad.train_config import DataConfig

    # --start-window-share's docstring spans three indented source lines: one paragraph of help.
    text = get_field_docstring(DataConfig, "start_window_share", ())
    assert "\n" not in text and "a uniform offset: evaluation begins with an empty context" in text
