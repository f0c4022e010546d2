"""Training losses for the headless output vector."""

from __future__ import annotations

from typing import Literal

import torch

from headless_ad.action_embeddings import ActionScoring, action_logits

LossKind = Literal["infonce", "mse"]


def headless_loss(
    outputs: torch.Tensor,
    embeddings: torch.Tensor,
    action_mask: torch.Tensor,
    targets: torch.Tensor,
    scoring: ActionScoring,
    kind: LossKind = "infonce",
    label_smoothing: float = 0.0,
    target_spread: torch.Tensor | None = None,
    target_probabilities: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and logits for output vectors (B, T, D) against target actions (B, T).

    InfoNCE is cross-entropy over the *available* actions only, with the taken action as the
    positive: unavailable actions are masked out of the softmax. The MSE ablation regresses the
    output onto the target's embedding directly (the paper's weaker alternative): the loss is the
    mean squared Euclidean distance. `label_smoothing` moves that share of the target's
    probability evenly onto the available actions (never onto unavailable ones). `target_spread`
    (B, T) does the same per step, before label smoothing: the target is then a distribution,
    weight 1 - spread on the target action (policy targets: the source's epsilon-greedy policy).
    `target_probabilities` (B, T, A) replaces the targets by a whole distribution (policy targets:
    Thompson Sampling's arm probabilities), renormalised over the available actions.
    """
    logits = action_logits(outputs, embeddings, action_mask, scoring)
    if kind == "infonce":
        log_probs = torch.log_softmax(logits, dim=-1)
        if target_probabilities is not None:
            return _distribution_cross_entropy(log_probs, action_mask, target_probabilities, label_smoothing), logits
        nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        if target_spread is None and label_smoothing == 0:
            loss = nll.mean()
        else:
            spread = label_smoothing
            if target_spread is not None:  # label smoothing on top of the policy's own spread
                spread = 1 - (1 - target_spread.to(nll.dtype)) * (1 - label_smoothing)
            available = action_mask.unsqueeze(1).expand_as(log_probs)
            uniform = -torch.where(available, log_probs, 0.0).sum(-1) / available.sum(-1)
            loss = ((1 - spread) * nll + spread * uniform).mean()
    else:
        target_vectors = torch.gather(embeddings, 1, targets.unsqueeze(-1).expand(-1, -1, embeddings.shape[-1]))
        loss = (outputs - target_vectors).square().sum(-1).mean()
    return loss, logits


def _distribution_cross_entropy(
    log_probs: torch.Tensor, action_mask: torch.Tensor, target: torch.Tensor, label_smoothing: float
) -> torch.Tensor:
    """Mean cross-entropy of (B, T, A) log-probabilities against target distributions over the
    available actions (unavailable ones, at -inf, carry no target weight)."""
    available = action_mask.unsqueeze(1).expand_as(log_probs)
    target = torch.where(available, target.to(log_probs.dtype), 0.0)
    target = target / target.sum(-1, keepdim=True).clamp_min(torch.finfo(target.dtype).tiny)
    if label_smoothing:
        uniform = available / available.sum(-1, keepdim=True)
        target = (1 - label_smoothing) * target + label_smoothing * uniform
    return -(target * torch.where(available, log_probs, 0.0)).sum(-1).mean()
