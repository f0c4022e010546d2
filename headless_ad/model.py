"""The causal transformer of Headless-AD, nanoGPT style: one file, no head over action indices.

Sequence layout (one token per environment step, the compact layout):

    [prompt_1 .. prompt_K | step_0 .. step_{T-1}]

* prompt_k: the random embedding of available action k (the action-set prompt). All prompt
  tokens sit at rotary position 0, so the prompt is an unordered set as far as positions go and
  the history's positions do not shift with the number of actions.
* step_t: previous action a_{t-1} + previous reward r_{t-1} (+ observation o_t), at position
  t + 1. The output vector at step_t predicts a_t; it is matched against the available actions'
  embeddings (see action_embeddings.py).
* With observations, step_t also carries the previous observation o_{t-1} and whether step t-1
  ended an episode (`transition_tokens`), so one token holds a whole transition
  (o_{t-1}, a_{t-1}, r_{t-1}, o_t): what an action did, or what it paid in which context, can be
  read from single tokens instead of being assembled across two by attention.

Attention is causal over the history and full within the prompt, so the model is equivariant to
any reordering of the action set. Padded prompt slots (instances with fewer actions than the
widest one in the batch) are masked out as keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
import tyro
from torch import nn

ObservationKind = Literal["none", "discrete", "continuous"]


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 128
    """Width of the residual stream; also the dimension of the random action embeddings."""
    n_layers: int = 3
    """Transformer blocks."""
    n_heads: int = 4
    """Attention heads; d_model / n_heads must be even (rotary embeddings rotate pairs)."""
    mlp_ratio: float = 8 / 3
    """SwiGLU hidden width as a multiple of d_model (8/3 keeps the parameter count of a 4x MLP)."""
    dropout: float = 0.0
    """Dropout on the residual branches and attention weights in training."""
    # Set by the trainer (from --seq-len and the task), so hidden from the command line.
    max_steps: Annotated[int, tyro.conf.Suppress] = 300
    """Longest history window (steps) the rotary tables cover; the trainer sets it to seq_len."""
    observation_kind: Annotated[ObservationKind, tyro.conf.Suppress] = "none"
    """Set by the trainer from the task."""
    observation_size: Annotated[int, tyro.conf.Suppress] = 0
    """Number of discrete observations, or the dimension of continuous ones (set from the task)."""
    rope_base: float = 10_000.0
    """Base of the rotary position embeddings' frequencies."""
    reward_gated_action: bool = False
    """Also feed the previous action's embedding times its reward, so the first attention layer
    can gather per-action reward sums directly (an input feature, not in the paper)."""
    action_regression_features: bool = False
    """With continuous observations o, also feed the previous action's embedding times that
    step's per-action linear-regression statistics (o_{t-1}, r_{t-1} o_{t-1} and the upper
    triangle of o_{t-1} o_{t-1}^T), so attention can sum each action's statistics in one step, as
    LinUCB keeps them (an input feature, not in the paper; needs transition tokens)."""
    first_use_action: bool = False
    """Also feed the previous action's embedding through its own projection when that action is
    taken for the first time in the window, so attention can sum the set of actions tried so far
    (the untried ones are then the prompt minus that sum, a linear step; an input feature, not in
    the paper)."""
    prompt_key_bias: bool = False
    """Add -log K to the attention logits of the K action-set prompt keys, so the attention the
    prompt draws (its keys are exchangeable) does not grow with the number of actions: a model
    trained on 50 Darkroom actions meets 75 or 125 in evaluation."""
    orthonormal_actions: bool = True
    """Orthonormal random action embeddings (the paper's) while the actions fit in d_model; False:
    independent random unit vectors always, as any embedding must be once actions outnumber
    d_model (e.g. 75 test actions at d_model 64), so training sees what evaluation will."""
    transition_tokens: bool = True
    """With observations, also feed the previous observation and the previous step's episode end
    (see the module docstring); no effect on tasks without observations."""
    head: Literal["headless", "indexed"] = "headless"
    """headless: Headless-AD (random action embeddings in, an action vector out). indexed: the AD
    baseline, the same transformer with a learned embedding per action index for the taken actions
    and a linear classifier over `num_actions` indices (no action-set prompt)."""
    num_actions: int = 0
    """Width of the indexed head (index i = the instance's i-th action); 0 = the training
    histories' widest action set. Suites with more actions are reported as n/a."""
    action_prompt: tyro.conf.FlagCreatePairsOff[bool] = True
    """Prepend the available actions' embeddings as a prompt; --model.no-action-prompt is the
    ablation without it. The indexed head never has one."""
    gaussian_actions: tyro.conf.FlagCreatePairsOff[bool] = False
    """Ablation: action embeddings drawn from N(0, I), unnormalised, instead of orthonormal ones."""
    action_dim: int = 0
    """Width of the random action embeddings, independent of d_model (projected in and out of the
    residual stream), so that more actions can be orthonormal at small widths; 0 = d_model."""
    action_memory: int = 0
    """Width of a per-action memory readout (0 = none): every step writes a learned vector under
    the action it took; each available action reads its own sum over the history and a shared
    MLP turns it, with the current step, into a score added along that action's embedding, so
    that a non-linear function of each action's statistics (an exploration bonus, say) needs no
    per-direction non-linearity in the residual stream (not in the paper; headless head only)."""


def action_width(config: ModelConfig) -> int:
    """Width of the action vectors the model reads and writes: the indexed head's one-hot rows
    (num_actions), else the random embeddings' (action_dim, or d_model)."""
    if config.head == "indexed":
        return config.num_actions
    return config.action_dim or config.d_model


def uses_prompt(config: ModelConfig) -> bool:
    return config.head == "headless" and config.action_prompt


def _rotary_tables(head_dim: int, max_positions: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_positions, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def _apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :h/2], x[..., h/2:]) of (B, H, L, hd) by per-position angles (L, hd/2)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def same_actions(vectors: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """(B, T, S) bool: vectors (B, T, W)[:, t] and others (B, S, W)[:, s] stand for the same
    action. Compared by cosine (1 for the same action, whatever kind of embedding draws them):
    with more actions than dimensions random embeddings overlap (|cos| ~ 1/sqrt(W)), so dot
    products would mix actions up."""
    return (F.normalize(vectors, dim=-1) @ F.normalize(others, dim=-1).transpose(1, 2)) > 0.99


def first_uses(action_vectors: torch.Tensor, earlier: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T) bool: action_vectors (B, T, W)[:, t] is a taken action (not the zero vector) that
    neither an earlier step nor `earlier` (B, S, W) holds."""
    history = action_vectors if earlier is None else torch.cat([earlier, action_vectors], dim=1)
    offset = history.shape[1] - action_vectors.shape[1]
    same = same_actions(action_vectors, history)
    steps = torch.arange(action_vectors.shape[1], device=action_vectors.device)[:, None] + offset
    before = torch.arange(history.shape[1], device=action_vectors.device)[None, :] < steps
    taken = action_vectors.abs().sum(-1) > 0
    return taken & ~(same & before).any(-1)


def regression_statistics(observations: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """(B, T, 2n + n(n+1)/2) one step's ridge-regression statistics: o, r o and the upper triangle
    of o o^T, for observations (B, T, n) and rewards (B, T)."""
    rows, cols = torch.triu_indices(observations.shape[-1], observations.shape[-1], device=observations.device)
    outer = observations[..., rows] * observations[..., cols]
    return torch.cat([observations, rewards.unsqueeze(-1) * observations, outer], dim=-1)


class KVCache:
    """Keys and values of every layer for incremental decoding, preallocated to `capacity`."""

    def __init__(self, config: ModelConfig, batch_size: int, capacity: int, device: torch.device, dtype: torch.dtype):
        head_dim = config.d_model // config.n_heads
        shape = (batch_size, config.n_heads, capacity, head_dim)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.key_valid = torch.zeros(batch_size, capacity, dtype=torch.bool, device=device)
        self.key_bias = torch.zeros(batch_size, capacity, device=device)  # see ModelConfig.prompt_key_bias
        self.length = 0
        self.prompt_length = 0
        self.capacity = capacity
        # The window's previous-action vectors, for ModelConfig.first_use_action.
        self.action_vectors: torch.Tensor | None = None
        # ModelConfig.action_memory: the action set and each action's sum so far, (B, K, F).
        self.action_set: torch.Tensor | None = None
        self.action_set_mask: torch.Tensor | None = None
        self.action_memory: torch.Tensor | None = None


class Attention(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.dropout = config.dropout

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache | None,
        layer: int,
    ) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, width // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = _apply_rotary(q, cos, sin), _apply_rotary(k, cos, sin)
        if mask.dtype != torch.bool:  # an additive mask must match the (possibly autocast) queries
            mask = mask.to(q.dtype)
        if cache is not None:
            start = cache.length
            cache.keys[layer][:, :, start : start + length] = k
            cache.values[layer][:, :, start : start + length] = v
            k = cache.keys[layer][:, :, : start + length]
            v = cache.values[layer][:, :, : start + length]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(batch, length, width))


class SwiGLU(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        hidden = int(config.mlp_ratio * config.d_model)
        self.gate_and_up = nn.Linear(config.d_model, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_and_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.d_model)
        self.attention = Attention(config)
        self.mlp_norm = nn.RMSNorm(config.d_model)
        self.mlp = SwiGLU(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, cos, sin, mask, cache, layer):
        x = x + self.dropout(self.attention(self.attention_norm(x), cos, sin, mask, cache, layer))
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class ActionMemoryReadout(nn.Module):
    """Scores each available action from what the history wrote under it (ModelConfig.action_memory).

    Step s writes v_s = W_v h_s under the action it carries (the previous action, whose
    embedding the step token holds); action a reads m_a(t), the sum of v_s over the steps s <= t
    that took a. Its score g([symlog m_a(t), W_q h_t]) comes from one MLP shared by
    all actions, and the output vector gains sum_a g_a e_a: an action's score is a non-linear
    function of its own statistics, whatever random direction it was given.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d, width = config.d_model, config.action_memory
        self.value = nn.Linear(d, width)  # the bias writes a constant: the action's count
        self.query = nn.Linear(d, width)
        self.score = nn.Sequential(nn.Linear(2 * width, 2 * width), nn.SiLU(), nn.Linear(2 * width, 1))

    def write(self, hidden: torch.Tensor, prev_action_vectors: torch.Tensor, action_set: torch.Tensor) -> torch.Tensor:
        """(B, T, K, F): what each of T steps adds to each action's memory, under the action
        whose embedding it carries."""
        gates = same_actions(prev_action_vectors, action_set).to(hidden.dtype)
        return gates.unsqueeze(-1) * self.value(hidden).unsqueeze(2)

    def read(
        self, memory: torch.Tensor, hidden: torch.Tensor, action_set: torch.Tensor, action_set_mask: torch.Tensor
    ) -> torch.Tensor:
        """Output-vector corrections (B, T, W) from memories (B, T, K, F) and hidden states (B, T, D)."""
        symlog = memory.sign() * memory.abs().log1p()
        query = self.query(hidden).unsqueeze(2).expand_as(symlog)
        scores = self.score(torch.cat([symlog, query], dim=-1)).squeeze(-1)  # (B, T, K)
        scores = scores * action_set_mask.unsqueeze(1).to(scores.dtype)
        return torch.einsum("btk,bkw->btw", scores, action_set)


class HeadlessTransformer(nn.Module):
    """Maps (action-set prompt, history) to one output vector per step, in action-embedding space."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.d_model % config.n_heads or (config.d_model // config.n_heads) % 2:
            raise ValueError("d_model must split into n_heads heads of even width")
        if config.head not in ("headless", "indexed"):
            raise ValueError(f"unknown model head {config.head!r} (headless, indexed)")
        if config.head == "indexed" and config.num_actions < 1:
            raise ValueError("the indexed head needs num_actions >= 1")
        self.config = config
        d = config.d_model
        width = action_width(config)
        # An indexed model's action vectors are one-hot rows: action_in is its learned action table.
        self.prompt_in = nn.Linear(width, d) if uses_prompt(config) else None
        self.action_in = nn.Linear(width, d, bias=False)
        self.reward_in = nn.Linear(1, d)
        self.action_reward_in = nn.Linear(width, d, bias=False) if config.reward_gated_action else None
        self.first_use_in = nn.Linear(width, d, bias=False) if config.first_use_action else None
        self.observation_in = self._observation_encoder(config, extra_rows=0)
        self.action_regression_in: nn.Linear | None = None
        if config.action_regression_features:
            if config.observation_kind != "continuous" or not config.transition_tokens:
                raise ValueError(
                    "--model.action-regression-features needs continuous observations and transition tokens"
                )
            size = config.observation_size
            self.action_regression_in = nn.Linear(width * (2 * size + size * (size + 1) // 2), d, bias=False)
        self.prev_observation_in: nn.Module | None = None
        self.episode_start: nn.Parameter | None = None
        if self.observation_in is not None and config.transition_tokens:
            # One extra row for "no previous observation" (a history's first step).
            self.prev_observation_in = self._observation_encoder(config, extra_rows=1)
            self.episode_start = nn.Parameter(torch.zeros(d))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.action_memory: ActionMemoryReadout | None = None
        if config.action_memory:
            if config.action_memory < 0:
                raise ValueError(f"--model.action-memory must be >= 0, got {config.action_memory}")
            if config.head != "headless":
                raise ValueError(
                    "--model.action-memory needs the headless head (an indexed head scores indices directly)"
                )
            self.action_memory = ActionMemoryReadout(config)
        self.final_norm = nn.RMSNorm(d)
        # Against one-hot action vectors the output's entries are the logits: AD's classifier.
        self.head = nn.Linear(d, width, bias=False)
        cos, sin = _rotary_tables(d // config.n_heads, config.max_steps + 1, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)

    @staticmethod
    def _observation_encoder(config: ModelConfig, extra_rows: int) -> nn.Module | None:
        if config.observation_kind == "discrete":
            return nn.Embedding(config.observation_size + extra_rows, config.d_model)
        if config.observation_kind == "continuous":
            return nn.Linear(config.observation_size, config.d_model, bias=False)
        return None

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def step_tokens(
        self,
        observations: torch.Tensor | None,
        prev_action_vectors: torch.Tensor,
        prev_rewards: torch.Tensor,
        prev_observations: torch.Tensor | None = None,
        prev_dones: torch.Tensor | None = None,
        earlier_action_vectors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, T, D) tokens from observations (B, T[, obs]), previous-action embeddings and rewards;
        with transition tokens also the previous observations (-1 / zeros where there is none)
        and the previous steps' episode ends (B, T) bool. `earlier_action_vectors` (B, S, W): the
        previous-action vectors of the window's steps before these (first_use_action)."""
        tokens = self.action_in(prev_action_vectors) + self.reward_in(prev_rewards.unsqueeze(-1))
        if self.first_use_in is not None:
            first = first_uses(prev_action_vectors, earlier_action_vectors)
            tokens = tokens + self.first_use_in(prev_action_vectors * first.unsqueeze(-1).to(tokens.dtype))
        if self.action_reward_in is not None:
            tokens = tokens + self.action_reward_in(prev_action_vectors * prev_rewards.unsqueeze(-1))
        if self.observation_in is not None:
            if observations is None:
                raise ValueError("this model was built for observations but got none")
            tokens = tokens + self.observation_in(observations)
        if self.prev_observation_in is not None and self.episode_start is not None:
            if prev_observations is None or prev_dones is None:
                raise ValueError("this model was built for transition tokens: pass prev_observations and prev_dones")
            if self.config.observation_kind == "discrete":
                prev_observations = torch.where(prev_observations < 0, self.config.observation_size, prev_observations)
            tokens = tokens + self.prev_observation_in(prev_observations)
            tokens = tokens + prev_dones.unsqueeze(-1).to(tokens.dtype) * self.episode_start
            if self.action_regression_in is not None:
                statistics = regression_statistics(prev_observations, prev_rewards)
                gated = prev_action_vectors.unsqueeze(-1) * statistics.unsqueeze(-2)  # (B, T, W, S)
                tokens = tokens + self.action_regression_in(gated.flatten(-2))
        return tokens

    def _run(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        cache: KVCache | None,
    ) -> torch.Tensor:
        """Final (normalised) hidden states."""
        cos, sin = self.rope_cos[positions], self.rope_sin[positions]
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, mask, cache, layer)
        return self.final_norm(x)

    def forward(
        self,
        action_set: torch.Tensor,
        action_set_mask: torch.Tensor,
        observations: torch.Tensor | None,
        prev_action_vectors: torch.Tensor,
        prev_rewards: torch.Tensor,
        cache: KVCache | None = None,
        prev_observations: torch.Tensor | None = None,
        prev_dones: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Output vectors (B, T, W) at the step tokens of a whole window.

        action_set (B, K, D) with action_set_mask (B, K); the history tensors cover T steps.
        With a `cache`, the keys and values are kept so that `decode` can continue from here.
        """
        available, available_mask = action_set, action_set_mask
        if self.prompt_in is None:  # no prompt tokens at all: the sequence is the history alone
            action_set, action_set_mask = action_set[:, :0], action_set_mask[:, :0]
            prompt = action_set.new_zeros(action_set.shape[0], 0, self.config.d_model)
        else:
            prompt = self.prompt_in(action_set)
        steps = self.step_tokens(observations, prev_action_vectors, prev_rewards, prev_observations, prev_dones)
        num_prompt, num_steps = prompt.shape[1], steps.shape[1]
        if num_steps > self.config.max_steps:
            raise ValueError(f"window of {num_steps} steps exceeds max_steps={self.config.max_steps}")
        x = torch.cat([prompt, steps], dim=1)
        positions = torch.cat([torch.zeros(num_prompt, dtype=torch.long), torch.arange(1, num_steps + 1)]).to(x.device)
        length = num_prompt + num_steps
        key_valid = torch.cat([action_set_mask, action_set_mask.new_ones(x.shape[0], num_steps)], dim=1)
        index = torch.arange(length, device=x.device)
        # Causal over the history; within the prompt every token sees every other (an unordered
        # set: nothing tells the model which slot an action sits in). A padded prompt slot is hidden
        # from everyone but itself, so that no query row is entirely masked.
        visible = (index[None, :] <= index[:, None]) | (index[None, :] < num_prompt)
        mask = visible & (key_valid[:, None, :] | torch.eye(length, dtype=torch.bool, device=x.device))
        key_bias = None
        if self.config.prompt_key_bias:
            num_actions = action_set_mask.sum(dim=1, keepdim=True).clamp(min=1).float()
            key_bias = torch.cat([(-num_actions.log()).expand(-1, num_prompt), x.new_zeros(x.shape[0], num_steps)], 1)
            mask = torch.where(mask, key_bias[:, None, :], float("-inf"))
        if cache is not None:
            cache.length, cache.prompt_length = 0, num_prompt
            cache.action_vectors = prev_action_vectors
            cache.key_valid[:, :length] = key_valid
            if key_bias is not None:
                cache.key_bias[:, :length] = key_bias
        hidden = self._run(x, positions, mask.unsqueeze(1), cache)[:, num_prompt:]
        if cache is not None:
            cache.length = length
        out = self.head(hidden)
        if self.action_memory is not None:
            memory = self.action_memory.write(hidden, prev_action_vectors, available).cumsum(dim=1)
            out = out + self.action_memory.read(memory, hidden, available, available_mask)
            if cache is not None:
                cache.action_set, cache.action_set_mask = available, available_mask
                cache.action_memory = memory[:, -1]
        return out

    def decode(
        self,
        cache: KVCache,
        observations: torch.Tensor | None,
        prev_action_vectors: torch.Tensor,
        prev_rewards: torch.Tensor,
        prev_observations: torch.Tensor | None = None,
        prev_dones: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Output vector (B, D) for one more step, attending to everything in `cache`."""
        if cache.length >= cache.capacity:
            raise ValueError("KV cache is full: re-encode a shorter window first")
        x = self.step_tokens(
            observations, prev_action_vectors, prev_rewards, prev_observations, prev_dones, cache.action_vectors
        )
        if self.first_use_in is not None:
            earlier = cache.action_vectors
            cache.action_vectors = (
                prev_action_vectors if earlier is None else torch.cat([earlier, prev_action_vectors], 1)
            )
        position = cache.length - cache.prompt_length + 1
        if position > self.config.max_steps:
            raise ValueError(f"step position {position} exceeds max_steps={self.config.max_steps}")
        cache.key_valid[:, cache.length] = True
        cache.key_bias[:, cache.length] = 0.0
        mask = cache.key_valid[:, None, None, : cache.length + 1]
        if self.config.prompt_key_bias:
            mask = torch.where(mask, cache.key_bias[:, None, None, : cache.length + 1], float("-inf"))
        hidden = self._run(x, torch.tensor([position], device=x.device), mask, cache)
        cache.length += 1
        out = self.head(hidden)
        if self.action_memory is not None:
            if cache.action_memory is None or cache.action_set is None or cache.action_set_mask is None:
                raise ValueError("the KV cache holds no action memory: encode the window with forward first")
            cache.action_memory = cache.action_memory + self.action_memory.write(
                hidden, prev_action_vectors, cache.action_set
            ).squeeze(1)
            out = out + self.action_memory.read(
                cache.action_memory.unsqueeze(1), hidden, cache.action_set, cache.action_set_mask
            )
        return out[:, 0]
