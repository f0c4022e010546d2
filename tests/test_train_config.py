"""The training options in sections: flags without prefixes, and saved configs of the flat form
(written before the sections existed) read as the nested one."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from flat_configs import ADDED_SINCE, FILLED_ON_READ, FLAT_CONFIG, MODEL_ADDED_SINCE, flat_form

from headless_ad.presets import PRESETS
from headless_ad.runs import flatten, resume_changes
from headless_ad.train_config import (
    SECTIONS,
    TrainConfig,
    config_markdown,
    nested_config,
    option_values,
    replace_options,
    to_jsonable,
)


def old_run_config() -> TrainConfig:
    """The config that wrote FLAT_CONFIG, built with this code."""
    bandit = PRESETS["bandit"][1]
    return replace_options(
        bandit, run_name="old-format-check", collect=replace(bandit.collect, num_instances=64),
        total_steps=20, warmup_steps=2, eval_every=0, eval_instances=8, threads=1, **ADDED_SINCE,
        # the bandit preset's scores and temperature when the record was written
        scoring=replace(bandit.scoring, similarity="cosine"), sample_temperature=0.8, final_sample_temperature=None,
    )  # fmt: skip


def test_a_flat_saved_config_reads_as_the_nested_form() -> None:
    flat = json.loads(FLAT_CONFIG.read_text())
    nested = nested_config(flat)
    expected = to_jsonable(old_run_config())
    added = {**ADDED_SINCE, **MODEL_ADDED_SINCE}
    assert option_values(nested) == {**option_values(flat_form(expected, drop=added)), **FILLED_ON_READ}
    # the same options, in the same order
    assert list(flat_form(expected, drop=added).items()) == list(flat.items())
    assert nested_config(expected) == expected
    assert nested["optimisation"]["total_steps"] == 20 and nested["runtime"]["threads"] == 1


def test_options_keep_the_names_of_their_flags() -> None:
    flat = json.loads(FLAT_CONFIG.read_text())
    assert option_values(flat) == {**flatten(flat), **FILLED_ON_READ}
    added = {**ADDED_SINCE, **MODEL_ADDED_SINCE}
    assert {**option_values(flat), **added} == option_values(old_run_config())
    assert [name for name in option_values(TrainConfig()) if name not in added] == list(flatten(flat))
    assert all(f"| {name} |" in config_markdown(TrainConfig()) for name in flatten(flat))
    assert not any(f"{section}." in config_markdown(TrainConfig()) for section in SECTIONS)


def test_a_record_missing_an_option_keeps_it_absent() -> None:
    """Readers apply their own default to an option the config does not record, except the
    in-training evaluation seed, which was the training seed + 1 before it was an option."""
    nested = nested_config({"task": "bandit", "seed": 3, "eval_every": 5})
    empty: dict = {"data": {}, "optimisation": {}, "runtime": {}}
    assert nested == {"task": "bandit", "seed": 3, "evaluation": {"eval_every": 5, "eval_seed": 4}, **empty}
    assert nested_config({"evaluation": {"eval_seed": 2}, "seed": 3})["evaluation"]["eval_seed"] == 2


def test_resume_changes_of_a_flat_checkpoint_name_the_flags() -> None:
    saved = option_values(json.loads(FLAT_CONFIG.read_text()))
    requested = replace_options(old_run_config(), eval_every=5, learning_rate=1e-3, seq_len=30)
    applied, refused = resume_changes(saved, option_values(requested), option_values(TrainConfig()))
    assert applied == ["--eval-every 0 -> 5"]
    assert refused == ["--seq-len 300 -> 30", "--learning-rate 0.003 -> 0.001"]


def test_replace_options_finds_each_option_in_its_section() -> None:
    config = replace_options(TrainConfig(), seq_len=7, batch_size=3, eval_every=9, threads=1, seed=4)
    assert (config.data.seq_len, config.optimisation.batch_size, config.evaluation.eval_every) == (7, 3, 9)
    assert (config.runtime.threads, config.seed) == (1, 4)
    assert TrainConfig().optimisation.batch_size == 16  # the defaults are not shared
    with pytest.raises(TypeError):
        replace_options(TrainConfig(), batch_sise=3)
