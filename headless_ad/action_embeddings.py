"""Random action embeddings: the only way action indices ever reach the model.

Headless-AD never learns a vector per action index. Each training batch (and each evaluation
run) draws fresh random orthonormal embeddings, so the model must read what an action does from
the context, and any number of unseen actions can be offered at test time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from headless_ad.model import ModelConfig, action_width


def random_action_embeddings(
    batch_size: int,
    num_actions: int,
    dim: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    orthonormal: bool = True,
) -> torch.Tensor:
    """(batch_size, num_actions, dim) unit vectors, orthonormal within a row when num_actions <= dim.

    Drawn from the Haar measure (QR of a Gaussian matrix with the sign of R's diagonal fixed).
    With more actions than dimensions they cannot all be orthogonal, and are independent random
    unit vectors instead (nearly orthogonal in high dimension); `orthonormal=False` always draws
    those, so that a model sees the same kind of embeddings for any number of actions.
    """
    gaussian = torch.randn(batch_size, dim, num_actions, generator=generator, device=device)
    if num_actions > dim or not orthonormal:
        return F.normalize(gaussian.transpose(1, 2), dim=-1)
    q, r = torch.linalg.qr(gaussian)
    signs = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
    signs[signs == 0] = 1.0
    return (q * signs.unsqueeze(1)).transpose(1, 2).contiguous()


class ActionSetTooLarge(ValueError):
    """An indexed (AD) head has fewer outputs than the instances have actions: it cannot act there."""


def action_vectors(
    config: ModelConfig,
    num_instances: int,
    num_actions: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    permute: bool = False,
) -> torch.Tensor:
    """(num_instances, num_actions, width) vectors standing for each instance's actions, as the
    model's config wants them: fresh random embeddings (orthonormal, or N(0, I) for the Gaussian
    ablation) for a headless model; one-hot rows of the indexed head for AD, action i -> index i,
    or -> a random index per instance with `permute` (AD-permuted)."""
    width = action_width(config)
    if config.head == "indexed":
        if num_actions > config.num_actions:
            raise ActionSetTooLarge(f"{num_actions} actions, more than the indexed head's {config.num_actions} outputs")
        if permute:
            scores = torch.rand(num_instances, config.num_actions, generator=generator, device=device)
            index = scores.argsort(dim=1)[:, :num_actions]
        else:
            index = torch.arange(num_actions, device=device).expand(num_instances, -1)
        return F.one_hot(index, width).float()
    if config.gaussian_actions:
        return torch.randn(num_instances, num_actions, width, generator=generator, device=device)
    return random_action_embeddings(num_instances, num_actions, width, generator, device, config.orthonormal_actions)


def with_no_action_row(embeddings: torch.Tensor) -> torch.Tensor:
    """Append a zero row so that action index -1 ("no previous action") embeds to zeros."""
    return torch.cat([embeddings, embeddings.new_zeros(embeddings.shape[0], 1, embeddings.shape[2])], dim=1)


def embed_actions(embeddings_with_no_action: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Look up (B, T) action indices (-1 allowed) in (B, A + 1, D) embeddings -> (B, T, D)."""
    index = torch.where(actions < 0, embeddings_with_no_action.shape[1] - 1, actions)
    return torch.gather(
        embeddings_with_no_action, 1, index.unsqueeze(-1).expand(-1, -1, embeddings_with_no_action.shape[2])
    )


Similarity = Literal["dot", "cosine", "euclidean"]


@dataclass(frozen=True)
class ActionScoring:
    """How an output vector scores the available actions: logits = similarity / temperature,
    times log(number of available actions) when `scale_by_log_actions`. `euclidean` scores by
    minus the squared distance (nearest action first), as the MSE loss needs. An indexed (AD)
    head's outputs are its logits, whatever this says (see `scoring_for`).

    The log scaling (as in Scalable-Softmax, Nakanishi 2025) keeps the softmax from flattening
    as the action set grows: with K near-equal distractors, the best action's share falls like
    1/K unless the logit gap grows like log K. Off by default, as in the paper.
    """

    similarity: Similarity = "dot"
    """dot: output . embedding (the norm can express certainty); cosine: normalised first."""
    temperature: float = 1.0
    """Scores are divided by it, in training and in evaluation (tau); not the sampling
    temperature (--sample-temperature)."""
    scale_by_log_actions: bool = False
    """Multiply the scores by log(number of available actions)."""


def action_logits(
    outputs: torch.Tensor, embeddings: torch.Tensor, action_mask: torch.Tensor, scoring: ActionScoring
) -> torch.Tensor:
    """Score every action for every output vector; unavailable actions get -inf.

    outputs (B, T, D), embeddings (B, A, D), action_mask (B, A) -> logits (B, T, A).
    """
    if scoring.similarity == "cosine":
        outputs = F.normalize(outputs, dim=-1)
        embeddings = F.normalize(embeddings, dim=-1)
    logits = torch.einsum("btd,bad->bta", outputs, embeddings)
    if scoring.similarity == "euclidean":  # -|o - e|^2 = 2 o.e - |o|^2 - |e|^2
        logits = 2 * logits - outputs.square().sum(-1, keepdim=True) - embeddings.square().sum(-1)[:, None, :]
    logits = logits / scoring.temperature
    if scoring.scale_by_log_actions:
        logits = logits * torch.log(action_mask.sum(dim=1).clamp(min=2).to(logits.dtype))[:, None, None]
    return logits.masked_fill(~action_mask.unsqueeze(1), float("-inf"))


def scoring_for(config: ModelConfig, scoring: ActionScoring) -> ActionScoring:
    """The scoring a model acts and trains with: an indexed head's outputs are its logits (dot
    products with one-hot rows), so the configured similarity and temperature do not apply."""
    return ActionScoring() if config.head == "indexed" else scoring


def select_actions(
    logits: torch.Tensor,
    mode: Literal["sample", "argmax"],
    generator: torch.Generator | None = None,
    sample_temperature: float | torch.Tensor = 1.0,
    min_p: float = 0.0,
) -> torch.Tensor:
    """Pick one action per row of (N, A) masked logits; -inf entries are never chosen.
    `sample` draws from softmax(logits / sample_temperature), one temperature or (N, 1) of them,
    after dropping the actions less likely than `min_p` times the row's most likely one (min-p
    sampling, judged at temperature 1): a long tail of unlikely actions, which grows with the
    action count, is cut without sharpening the likely ones."""
    if mode == "argmax":
        return logits.argmax(dim=-1)
    logits = logits.float()
    if min_p > 0:
        # p_a < min_p * p_max  <=>  logit_a < max logit + log(min_p); the best action always stays.
        threshold = logits.max(dim=-1, keepdim=True).values + math.log(min_p)
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    probs = torch.softmax(logits / sample_temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
