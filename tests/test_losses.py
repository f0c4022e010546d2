"""Random action embeddings, the contrastive loss and masked action selection."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from headless_ad.action_embeddings import ActionScoring, action_logits, random_action_embeddings, select_actions
from headless_ad.losses import headless_loss


def test_embeddings_are_orthonormal_and_fresh_each_draw() -> None:
    generator = torch.Generator().manual_seed(0)
    first = random_action_embeddings(4, 20, 32, generator)
    gram = first @ first.transpose(1, 2)
    torch.testing.assert_close(gram, torch.eye(20).expand(4, 20, 20), atol=1e-5, rtol=0)
    second = random_action_embeddings(4, 20, 32, generator)
    assert (first - second).abs().max() > 0.1
    wide = random_action_embeddings(2, 100, 32, generator)  # more actions than dimensions
    torch.testing.assert_close(wide.norm(dim=-1), torch.ones(2, 100))


def test_independent_embeddings_look_alike_for_any_number_of_actions() -> None:
    """orthonormal=False: unit vectors with the overlaps of many actions even when few are drawn."""
    generator = torch.Generator().manual_seed(0)
    few = random_action_embeddings(64, 20, 32, generator, orthonormal=False)
    many = random_action_embeddings(16, 100, 32, generator, orthonormal=False)
    for embeddings in (few, many):
        torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(embeddings.shape[:2]))
        gram = embeddings @ embeddings.transpose(1, 2)
        off_diagonal = gram[:, ~torch.eye(gram.shape[1], dtype=torch.bool)]
        # Independent directions in 32 dimensions: cosines spread with std 1/sqrt(32).
        assert abs(off_diagonal.std().item() - 32**-0.5) < 0.02


def test_infonce_is_cross_entropy_over_the_available_actions_only() -> None:
    generator = torch.Generator().manual_seed(1)
    embeddings = random_action_embeddings(2, 5, 16, generator)
    outputs = torch.randn(2, 3, 16, generator=generator)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    targets = torch.tensor([[0, 2, 1], [4, 3, 0]])
    loss, _ = headless_loss(outputs, embeddings, mask, targets, ActionScoring(temperature=0.5))
    expected = []
    for b, available in enumerate([3, 5]):
        logits = outputs[b] @ embeddings[b, :available].T / 0.5
        expected.append(F.cross_entropy(logits, targets[b], reduction="none"))
    torch.testing.assert_close(loss, torch.cat(expected).mean())


def test_uninformative_output_gives_log_of_the_number_of_available_actions() -> None:
    embeddings = random_action_embeddings(1, 8, 16)
    mask = torch.tensor([[True] * 6 + [False] * 2])
    loss, _ = headless_loss(torch.zeros(1, 4, 16), embeddings, mask, torch.tensor([[0, 1, 2, 5]]), ActionScoring())
    assert loss.item() == pytest.approx(math.log(6))


def test_cosine_similarity_ignores_output_scale() -> None:
    embeddings = random_action_embeddings(1, 4, 8)
    outputs = torch.randn(1, 2, 8)
    mask = torch.ones(1, 4, dtype=torch.bool)
    targets = torch.tensor([[1, 2]])
    cosine = ActionScoring(similarity="cosine", temperature=0.1)
    small, _ = headless_loss(outputs, embeddings, mask, targets, cosine)
    large, _ = headless_loss(10 * outputs, embeddings, mask, targets, cosine)
    torch.testing.assert_close(small, large)


def test_selection_never_picks_an_unavailable_action() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5000, 6, generator=generator) * 3
    logits[:, 4:] = float("-inf")
    logits[:10, 5] = float("-inf")
    sampled = select_actions(logits, "sample", generator)
    assert sampled.max() < 4
    assert set(sampled.tolist()) == {0, 1, 2, 3}
    assert select_actions(logits, "argmax").max() < 4


def test_sample_temperature_sharpens_the_sampled_policy() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2, 0.0]])).expand(20_000, 4)
    frequencies = {}
    for temperature in (1.0, 0.5):
        picks = select_actions(logits, "sample", torch.Generator().manual_seed(0), temperature)
        frequencies[temperature] = torch.bincount(picks, minlength=4).float() / len(picks)
    torch.testing.assert_close(frequencies[1.0], torch.tensor([0.5, 0.3, 0.2, 0.0]), atol=0.015, rtol=0)
    # softmax(log p / 0.5) is p^2 renormalised: 0.25, 0.09, 0.04 over 0.38.
    torch.testing.assert_close(frequencies[0.5], torch.tensor([25, 9, 4, 0]) / 38.0, atol=0.015, rtol=0)


def test_min_p_drops_the_unlikely_tail_and_keeps_the_rest_proportional() -> None:
    # 0.5, 0.3 and 0.15 are at least 0.25 of the best (0.5); 0.05 is not.
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(20_000, 4)
    picks = select_actions(logits, "sample", torch.Generator().manual_seed(0), 1.0, min_p=0.25)
    frequencies = torch.bincount(picks, minlength=4).float() / len(picks)
    torch.testing.assert_close(frequencies, torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95, atol=0.015, rtol=0)
    # The temperature applies after the cut: at 0.5 the kept three are squared and renormalised.
    picks = select_actions(logits, "sample", torch.Generator().manual_seed(0), 0.5, min_p=0.25)
    frequencies = torch.bincount(picks, minlength=4).float() / len(picks)
    torch.testing.assert_close(frequencies, torch.tensor([0.25, 0.09, 0.0225, 0.0]) / 0.3625, atol=0.015, rtol=0)
    # A row whose best action is far ahead keeps only it; masked actions stay masked.
    masked = torch.tensor([[5.0, 0.0, float("-inf")]])
    assert set(
        select_actions(masked.expand(1000, 3), "sample", torch.Generator().manual_seed(0), 1.0, 0.1).tolist()
    ) == {0}


def test_per_row_temperatures_sharpen_only_their_rows() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).expand(20_000, 3)
    temperature = torch.where(torch.arange(20_000) < 10_000, 1.0, 0.5)[:, None]
    picks = select_actions(logits, "sample", torch.Generator().manual_seed(0), temperature)
    plain, sharp = (torch.bincount(half, minlength=3).float() / 10_000 for half in picks.split(10_000))
    torch.testing.assert_close(plain, torch.tensor([0.5, 0.3, 0.2]), atol=0.02, rtol=0)
    torch.testing.assert_close(sharp, torch.tensor([25, 9, 4]) / 38.0, atol=0.02, rtol=0)


def test_log_actions_scale_multiplies_logits_by_log_of_the_available_count() -> None:
    embeddings = random_action_embeddings(2, 50, 64)
    outputs = torch.randn(2, 3, 64)
    mask = torch.ones(2, 50, dtype=torch.bool)
    mask[0, 10:] = False
    plain = action_logits(outputs, embeddings, mask, ActionScoring())
    scaled = action_logits(outputs, embeddings, mask, ActionScoring(scale_by_log_actions=True))
    torch.testing.assert_close(scaled[0, :, :10], plain[0, :, :10] * math.log(10))
    torch.testing.assert_close(scaled[1], plain[1] * math.log(50))
    assert torch.isinf(scaled[0, :, 10:]).all()


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_policy_targets_are_cross_entropy_against_the_epsilon_greedy_distribution(label_smoothing: float) -> None:
    generator = torch.Generator().manual_seed(3)
    outputs, embeddings = torch.randn(2, 5, 8, generator=generator), torch.randn(2, 6, 8, generator=generator)
    mask = torch.tensor([[True] * 6, [True, True, False, True, False, False]])
    greedy = torch.tensor([[0, 1, 2, 3, 4], [0, 1, 3, 0, 1]])
    spread = torch.rand(2, 5, generator=generator)
    loss, logits = headless_loss(outputs, embeddings, mask, greedy, ActionScoring(), "infonce", label_smoothing, spread)
    total = 1 - (1 - spread) * (1 - label_smoothing)  # label smoothing on top of the policy's own spread
    uniform = mask[:, None, :].float() / mask.sum(-1)[:, None, None]
    target = (1 - total)[..., None] * F.one_hot(greedy, 6) + total[..., None] * uniform
    log_probs = torch.log_softmax(logits, -1).masked_fill(~mask[:, None, :], 0.0)
    torch.testing.assert_close(loss, -(target * log_probs).sum(-1).mean())
    no_spread, _ = headless_loss(outputs, embeddings, mask, greedy, ActionScoring(), "infonce", 0.0, spread * 0)
    torch.testing.assert_close(no_spread, F.cross_entropy(logits.flatten(0, 1), greedy.flatten()))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_distribution_targets_are_cross_entropy_over_the_available_actions(label_smoothing: float) -> None:
    generator = torch.Generator().manual_seed(4)
    outputs, embeddings = torch.randn(2, 5, 8, generator=generator), torch.randn(2, 6, 8, generator=generator)
    mask = torch.tensor([[True] * 6, [True, True, False, True, False, False]])
    taken = torch.tensor([[0, 1, 2, 3, 4], [0, 1, 3, 0, 1]])
    probabilities = torch.rand(2, 5, 6, generator=generator) * mask[:, None, :]
    probabilities = probabilities / probabilities.sum(-1, keepdim=True)
    loss, logits = headless_loss(
        outputs,
        embeddings,
        mask,
        taken,
        ActionScoring(),
        "infonce",
        label_smoothing,
        target_probabilities=probabilities,
    )
    uniform = mask[:, None, :].float() / mask.sum(-1)[:, None, None]
    target = (1 - label_smoothing) * probabilities + label_smoothing * uniform
    log_probs = torch.log_softmax(logits, -1).masked_fill(~mask[:, None, :], 0.0)
    torch.testing.assert_close(loss, -(target * log_probs).sum(-1).mean())
    # A one-hot distribution is the plain cross-entropy against that action.
    one_hot, _ = headless_loss(
        outputs, embeddings, mask, taken, ActionScoring(), "infonce", target_probabilities=F.one_hot(taken, 6).half()
    )
    torch.testing.assert_close(one_hot, F.cross_entropy(logits.flatten(0, 1), taken.flatten()))
