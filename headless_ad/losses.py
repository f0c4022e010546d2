"""Training losses for the headless output vector."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from headless_ad.action_embeddings import ActionScoring, action_logits

LossKind = Literal["infonce", "mse"]


def headless_loss(
    outputs: torch.Tensor,
    embeddings: torch.Tensor,
    action_mask: torch.Tensor,
    targets: torch.Tensor,
    scoring: ActionScoring,
    kind: LossKind = "infonce",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and logits for output vectors (B, T, D) against target actions (B, T).

    InfoNCE is cross-entropy over the *available* actions only, with the taken action as the
    positive: unavailable actions are masked out of the softmax. The MSE ablation regresses the
    output onto the target's embedding directly (the paper's weaker alternative).
    """
    logits = action_logits(outputs, embeddings, action_mask, scoring)
    if kind == "infonce":
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    else:
        target_vectors = torch.gather(embeddings, 1, targets.unsqueeze(-1).expand(-1, -1, embeddings.shape[-1]))
        loss = F.mse_loss(outputs, target_vectors)
    return loss, logits
