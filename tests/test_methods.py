"""The AD baseline and the ablations: each switch changes exactly what it claims."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from headless_ad.__main__ import main
from headless_ad.action_embeddings import (
    ActionScoring,
    ActionSetTooLarge,
    action_logits,
    action_vectors,
    embed_actions,
    with_no_action_row,
)
from headless_ad.losses import headless_loss
from headless_ad.methods import check_indexed_training, method_name
from headless_ad.model import HeadlessTransformer, KVCache, ModelConfig
from headless_ad.policy import ModelAgent
from headless_ad.results import load_evaluation
from headless_ad.train_config import nested_config

VARIANTS = {
    "headless": {},
    "indexed": {"head": "indexed", "num_actions": 8},
    "no prompt": {"action_prompt": False},
    "gaussian": {"gaussian_actions": True},
    "action_dim": {"action_dim": 12, "reward_gated_action": True},
}


def make_model(max_steps: int = 10, **kwargs) -> HeadlessTransformer:
    torch.manual_seed(0)
    return HeadlessTransformer(ModelConfig(d_model=16, n_layers=2, n_heads=2, max_steps=max_steps, **kwargs)).eval()


def inputs(model: HeadlessTransformer, batch: int = 3, actions: int = 6, steps: int = 10):
    generator = torch.Generator().manual_seed(1)
    vectors = action_vectors(model.config, batch, actions, generator)
    mask = torch.ones(batch, actions, dtype=torch.bool)
    mask[0, 4:] = False
    prev_actions = torch.randint(0, 4, (batch, steps), generator=generator)
    prev_actions[:, 0] = -1
    return vectors, mask, embed_actions(with_no_action_row(vectors), prev_actions), torch.rand(batch, steps)


@pytest.mark.parametrize("variant", VARIANTS)
def test_kv_cache_decoding_equals_full_forward(variant: str) -> None:
    model = make_model(**VARIANTS[variant])
    vectors, mask, taken, rewards = inputs(model)
    with torch.no_grad():
        full = model(vectors, mask, None, taken, rewards)
        cache = KVCache(model.config, 3, 6 + 10, torch.device("cpu"), torch.float32)
        outputs = [model(vectors, mask, None, taken[:, :1], rewards[:, :1], cache=cache)[:, 0]]
        outputs += [model.decode(cache, None, taken[:, t : t + 1], rewards[:, t : t + 1]) for t in range(1, 10)]
    torch.testing.assert_close(torch.stack(outputs, 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["indexed", "no prompt"])
def test_without_a_prompt_the_sequence_is_the_history_alone(variant: str) -> None:
    model = make_model(**VARIANTS[variant])
    vectors, mask, taken, rewards = inputs(model)
    cache = KVCache(model.config, 3, 6 + 10, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        out = model(vectors, mask, None, taken, rewards, cache=cache)
        # The action set reaches the model only through the taken actions: other rows change nothing.
        other = model(vectors + torch.randn_like(vectors), mask, None, taken, rewards)
    assert cache.prompt_length == 0 and cache.length == 10
    torch.testing.assert_close(out, other)
    assert model.prompt_in is None
    with_prompt = make_model()
    vectors, mask, taken, rewards = inputs(with_prompt)
    cache = KVCache(with_prompt.config, 3, 6 + 10, torch.device("cpu"), torch.float32)
    with torch.no_grad():
        with_prompt(vectors, mask, None, taken, rewards, cache=cache)
    assert cache.prompt_length == 6 and cache.length == 16


def test_gaussian_embeddings_are_unnormalised_and_not_orthonormal() -> None:
    config = ModelConfig(d_model=64, gaussian_actions=True)
    vectors = action_vectors(config, 200, 10, torch.Generator().manual_seed(0))
    gram = vectors @ vectors.transpose(1, 2)
    assert not torch.allclose(gram, torch.eye(10).expand_as(gram), atol=0.1)
    # N(0, I): squared norms average the dimension, entries have unit variance.
    assert abs(vectors.square().sum(-1).mean().item() - 64) < 2
    assert abs(vectors.std().item() - 1) < 0.02
    orthonormal = action_vectors(ModelConfig(d_model=64), 20, 10, torch.Generator().manual_seed(0))
    torch.testing.assert_close(orthonormal @ orthonormal.transpose(1, 2), torch.eye(10).expand(20, 10, 10))


def test_action_dim_makes_embeddings_orthonormal_beyond_d_model() -> None:
    config = ModelConfig(d_model=16, n_heads=2, action_dim=128)
    vectors = action_vectors(config, 2, 125, torch.Generator().manual_seed(0))
    assert vectors.shape == (2, 125, 128)
    torch.testing.assert_close(vectors @ vectors.transpose(1, 2), torch.eye(125).expand(2, 125, 125))
    model = HeadlessTransformer(config)
    assert model.head.out_features == 128 and model.action_in.in_features == 128


def test_mse_loss_is_the_mean_squared_distance_and_selection_picks_the_nearest_action() -> None:
    generator = torch.Generator().manual_seed(0)
    outputs, embeddings = torch.randn(2, 5, 8, generator=generator), torch.randn(2, 4, 8, generator=generator)
    mask = torch.ones(2, 4, dtype=torch.bool)
    targets = torch.randint(0, 4, (2, 5), generator=generator)
    scoring = ActionScoring(similarity="euclidean")
    loss, logits = headless_loss(outputs, embeddings, mask, targets, scoring, "mse")
    expected = np.mean(
        [((outputs[b, t] - embeddings[b, targets[b, t]]) ** 2).sum().item() for b in range(2) for t in range(5)]
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    distances = torch.cdist(outputs, embeddings)
    torch.testing.assert_close(logits, -distances.square(), atol=1e-4, rtol=1e-4)
    assert torch.equal(logits.argmax(-1), distances.argmin(-1))


def test_label_smoothing_spreads_over_available_actions_only() -> None:
    outputs, embeddings = torch.randn(1, 1, 4), torch.eye(4)[None]
    mask = torch.tensor([[True, True, True, False]])
    targets = torch.tensor([[1]])
    loss, _ = headless_loss(outputs, embeddings, mask, targets, ActionScoring(), "infonce", 0.3)
    log_probs = torch.log_softmax(outputs[0, 0, :3], -1)
    expected = 0.7 * -log_probs[1] - 0.3 * log_probs.mean()
    assert torch.isfinite(loss) and loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_indexed_head_maps_action_i_to_output_i_and_permutes_on_request() -> None:
    config = ModelConfig(head="indexed", num_actions=8)
    plain = action_vectors(config, 3, 5)
    assert torch.equal(plain.argmax(-1), torch.arange(5).expand(3, 5))
    permuted = action_vectors(config, 50, 5, torch.Generator().manual_seed(0), permute=True).argmax(-1)
    assert all(len(set(row.tolist())) == 5 for row in permuted)  # distinct indices per history
    assert len({tuple(row.tolist()) for row in permuted}) > 40  # fresh per history
    assert int(permuted.max()) >= 5  # over the whole head, not only the first 5 outputs
    with pytest.raises(ActionSetTooLarge, match="more than the indexed head's 8"):
        action_vectors(config, 3, 9)


def test_indexed_head_never_selects_outside_the_instance_set() -> None:
    model = make_model(head="indexed", num_actions=8)
    counts = np.array([2, 5, 8, 3])
    action_mask = np.arange(8)[None, :] < counts[:, None]
    for selection in ("sample", "argmax"):
        agent = ModelAgent(model, action_mask[:, : counts.max()], selection, ActionScoring(), seed=0)
        rng = np.random.default_rng(0)
        chosen = []
        for _ in range(30):
            actions = agent.act(np.zeros(4, dtype=np.int64))
            chosen.append(actions)
            agent.update(None, actions, rng.random(4))
        assert (np.stack(chosen, 1) < counts[:, None]).all()
    # logits over exactly the instance's actions: unavailable ones are -inf
    logits = action_logits(torch.randn(4, 1, 8), agent.embeddings, agent.action_mask, ActionScoring())
    assert torch.isinf(logits[0, 0, 2:]).all() and torch.isfinite(logits[2, 0]).all()


def test_ad_trains_per_action_set() -> None:
    check_indexed_training(np.array([10, 10]), 0, False, False, "store")
    check_indexed_training(np.array([4, 9]), 10, True, False, "store")
    with pytest.raises(ValueError, match="store has instances with 4-9 actions"):
        check_indexed_training(np.array([4, 9]), 0, False, False, "store")
    with pytest.raises(ValueError, match=r"more than --model\.num-actions 5"):
        check_indexed_training(np.array([9]), 5, True, False, "store")


def test_method_names_from_saved_configs() -> None:
    assert method_name({"model": {}}) == "Headless-AD"
    assert method_name({"model": {"head": "indexed"}}) == "AD"
    assert method_name({"model": {"head": "indexed"}, "data": {"permute_actions": True}}) == "AD-permuted"
    assert method_name({"model": {"action_prompt": False}}) == "no prompt"
    assert method_name({"model": {"gaussian_actions": True}}) == "Gaussian embeddings"
    assert method_name({"model": {}, "optimisation": {"loss": "mse"}}) == "MSE loss"
    # Configs saved before the options had sections held them at the top level.
    assert method_name(nested_config({"model": {"head": "indexed"}, "permute_actions": True})) == "AD-permuted"
    assert method_name(nested_config({"model": {}, "loss": "mse"})) == "MSE loss"


TINY = [
    "--collect.num-instances", "32", "--collect.horizon", "30", "--seq-len", "30",
    "--model.d-model", "16", "--model.n-layers", "1", "--model.n-heads", "2",
    "--batch-size", "4", "--total-steps", "3", "--warmup-steps", "1", "--log-every", "3",
    "--eval-every", "0", "--checkpoint-every", "3", "--eval-instances", "6", "--threads", "1",
]  # fmt: skip


def cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["headless_ad", *args])
    main()


def test_ad_round_trip_reports_wider_suites_as_not_applicable(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    cli(monkeypatch, "train", "bandit", "--run-name", "ad", *TINY, "--model.head", "indexed",
        "--collect.train-suite", "arms=5", "--eval-suites", "num_5", "num_8")  # fmt: skip
    out = capsys.readouterr().out
    assert "n/a on num_8: the model cannot act here: 8 actions, more than the indexed head's 5 outputs" in out
    [final] = (tmp_path / "runs/ad/evaluations").iterdir()
    assert final.name.startswith("train-step3_seed2_n6_h30_argmax+sample")  # --eval-seed's default
    document = load_evaluation(final)
    assert document["suites"]["num_8"]["not_applicable"]["model_sample"].endswith("5 outputs")
    assert "model_sample" not in document["suites"]["num_8"]["agents"]
    assert len(document["suites"]["num_5"]["agents"]["model_sample"]["per_instance"]) == 6

    cli(monkeypatch, "evaluate", "--checkpoint", "runs/ad/checkpoint.pt", "--num-instances", "5",
        "--suites", "num_5", "num_6", "--selection", "sample")  # fmt: skip
    out = capsys.readouterr().out
    assert "per-instance results in runs/ad/evaluations/step3_" in out and "| n/a |" in out
    [saved] = (tmp_path / "runs/ad/evaluations").glob("step3_*")
    document = load_evaluation(saved)
    agents = document["suites"]["num_5"]["agents"]
    for entry in agents.values():  # the per-instance values average to the reported metric
        assert np.mean(entry["per_instance"]) == pytest.approx(entry["metric"])
        x, curves = document["curves"][entry["curve"]]
        assert curves.shape == (5, 30) and x[-1] == 30
        np.testing.assert_allclose(curves[:, -1], entry["per_instance"], rtol=1e-5)
    # The same evaluation again is refused before any work; --overwrite replaces it.
    before = (saved / "results.json").read_text()
    with pytest.raises(SystemExit):
        cli(monkeypatch, "evaluate", "--checkpoint", "runs/ad/checkpoint.pt", "--num-instances", "5",
            "--suites", "num_5", "num_6", "--selection", "sample")  # fmt: skip
    assert "pass --overwrite to replace it" in capsys.readouterr().err
    assert (saved / "results.json").read_text() == before


def test_policy_targets_train_on_q_learnings_recorded_distribution(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    window = ["--collect.horizon", "200", "--seq-len", "40", "--episode-stride", "1"]
    cli(monkeypatch, "train", "darkroom", "--run-name", "pt", *TINY, *window, "--policy-targets",
        "--eval-suites", "train_goals/train", "--eval-horizon", "60")  # fmt: skip
    saved = json.loads((tmp_path / "runs/pt/config.json").read_text())
    assert saved["data"]["policy_targets"] is True
    assert torch.load(tmp_path / "runs/pt/checkpoint.pt", weights_only=False)["step"] == 3


def test_policy_targets_train_on_thompson_samplings_estimated_probabilities(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    cli(monkeypatch, "train", "bandit", "--run-name", "pt", *TINY, "--collect.source", "thompson_policy",
        "--policy-targets", "--collect.train-suite", "arms=5", "--eval-suites", "num_5")  # fmt: skip
    saved = json.loads((tmp_path / "runs/pt/config.json").read_text())
    assert saved["data"]["policy_targets"] is True and saved["collect"]["source"] == "thompson_policy"
    assert torch.load(tmp_path / "runs/pt/checkpoint.pt", weights_only=False)["step"] == 3


def test_training_seeds_share_the_in_training_evaluation(monkeypatch, capsys, tmp_path: Path) -> None:
    """Runs of different training seeds evaluate on the same draws, so a report averages them."""
    monkeypatch.chdir(tmp_path)
    for seed in (0, 1):
        cli(monkeypatch, "train", "bandit", "--run-name", f"had-s{seed}", "--seed", str(seed), *TINY,
            "--collect.train-suite", "arms=5", "--eval-suites", "num_5")  # fmt: skip
    cli(monkeypatch, "report", "runs/had-s0", "runs/had-s1", "--out", "report")
    summary = json.loads((tmp_path / "report/summary.json").read_text())
    assert summary["suites"]["num_5"]["methods"]["Headless-AD"]["seeds"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model.head", "indexed"], "AD (--model.head indexed) trains per action set"),
        (["--loss", "mse"], "--loss mse regresses onto the target's embedding"),
        (["--permute-actions"], "--permute-actions and --mixed-action-counts are for --model.head indexed"),
        (["--policy-targets", "--loss", "mse", "--scoring.similarity", "euclidean"], "--loss infonce"),
        (["--policy-targets"], "--policy-targets: the source thompson does not tell its action distribution"),
        (["--model.head", "indexed", "--collect.train-suite", "arms=9", "--model.num-actions", "5"], "more than"),
    ],
)
def test_bad_method_switches_fail_in_one_line(monkeypatch, capsys, tmp_path: Path, args, message) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        cli(monkeypatch, "train", "bandit", *TINY, *args)
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()  # refused before any collection


def test_darkroom_instance_metrics_average_to_its_metric() -> None:
    from headless_ad.rollout import Rollout
    from headless_ad.tasks import get_task

    rng = np.random.default_rng(0)
    dones = rng.random((4, 200)) < 0.1
    rollout = Rollout(np.zeros((4, 200), int), rng.random((4, 200)).astype(np.float32), np.zeros((4, 200)), dones, None)
    task = get_task("darkroom")
    assert np.nanmean(task.instance_metrics(rollout)) == pytest.approx(task.metric(rollout))
    _, curves = task.instance_curves(rollout)
    np.testing.assert_allclose(curves.mean(axis=0), task.curve(rollout)[1])
