"""Named training presets. A preset is a full TrainConfig; every field can still be overridden."""

from __future__ import annotations

from headless_ad.action_embeddings import ActionScoring
from headless_ad.collect import CollectConfig
from headless_ad.model import ModelConfig
from headless_ad.train import TrainConfig

PRESETS: dict[str, tuple[str, TrainConfig]] = {
    "bandit": (
        "Bernoulli bandits, CPU preset (the demo): a 0.16M-parameter model, about 17 minutes on 2 cores.",
        TrainConfig(
            task="bandit",
            run_name="bandit",
            collect=CollectConfig(task="bandit"),
            model=ModelConfig(d_model=64, n_layers=3, n_heads=4, reward_gated_action=True),
            scoring=ActionScoring(similarity="cosine", temperature=0.3, scale_by_log_actions=True),
            batch_size=16,
            learning_rate=3e-3,
            total_steps=6_000,
            eval_every=2_000,
            threads=2,
            # Measured: bf16 autocast gains under 5% at this width on CPU; fp32 runs anywhere.
            precision="fp32",
        ),
    ),
    "bandit-paper": (
        "Bernoulli bandits at the paper's scale (d_model 512, 4 layers, batch 32, 200k steps): for a GPU.",
        TrainConfig(
            task="bandit",
            run_name="bandit-paper",
            collect=CollectConfig(task="bandit"),
            model=ModelConfig(d_model=512, n_layers=4, n_heads=8, dropout=0.1),
            batch_size=32,
            learning_rate=3e-4,
            warmup_steps=2_000,
            total_steps=200_000,
            eval_every=10_000,
            checkpoint_every=5_000,
            eval_suites=("all_new", "num_25", "num_50"),
        ),
    ),
    "contextual-bandit": (
        "Linear contextual bandits (2-d contexts, 4-20 arms), CPU preset: LinUCB histories, the bandit preset's model.",
        TrainConfig(
            task="contextual_bandit",
            run_name="contextual-bandit",
            collect=CollectConfig(task="contextual_bandit"),
            model=ModelConfig(d_model=64, n_layers=3, n_heads=4),
            scoring=ActionScoring(similarity="cosine", temperature=0.3, scale_by_log_actions=True),
            batch_size=16,
            learning_rate=3e-3,
            total_steps=6_000,
            eval_every=2_000,
            threads=2,
            precision="fp32",
            eval_suites=("eval", "num_100"),
        ),
    ),
    "contextual-bandit-paper": (
        "Linear contextual bandits at the paper's scale (d_model 512, 4 layers, batch 32, 200k steps): for a GPU.",
        TrainConfig(
            task="contextual_bandit",
            run_name="contextual-bandit-paper",
            collect=CollectConfig(task="contextual_bandit"),
            model=ModelConfig(d_model=512, n_layers=4, n_heads=8, dropout=0.1),
            batch_size=32,
            learning_rate=3e-4,
            warmup_steps=2_000,
            total_steps=200_000,
            eval_every=10_000,
            checkpoint_every=5_000,
            eval_suites=("eval", "num_25", "num_50"),
        ),
    ),
    "darkroom": (
        "Darkroom 9x9 with 3-move action sequences, CPU preset: 2,000 Q-learning histories of 4,000 steps.",
        TrainConfig(
            task="darkroom",
            run_name="darkroom",
            collect=CollectConfig(task="darkroom", num_instances=2_000, horizon=4_000),
            model=ModelConfig(d_model=64, n_layers=3, n_heads=4),
            scoring=ActionScoring(similarity="cosine", temperature=0.3, scale_by_log_actions=True),
            seq_len=200,
            batch_size=16,
            learning_rate=3e-3,
            total_steps=8_000,
            threads=2,
            precision="fp32",
            eval_every=2_000,
            eval_instances=50,
            eval_suites=("test_goals/test", "train_goals/train"),
        ),
    ),
    "darkroom-paper": (
        "Darkroom at the paper's scale (10,000 histories, d_model 512, 4 layers): for a GPU.",
        TrainConfig(
            task="darkroom",
            run_name="darkroom-paper",
            collect=CollectConfig(task="darkroom", num_instances=10_000, horizon=4_000),
            model=ModelConfig(d_model=512, n_layers=4, n_heads=8, dropout=0.1),
            seq_len=200,
            batch_size=32,
            learning_rate=3e-4,
            warmup_steps=2_000,
            total_steps=200_000,
            eval_every=10_000,
            checkpoint_every=5_000,
            eval_suites=("test_goals/test", "test_goals/all", "train_goals/train"),
        ),
    ),
}
