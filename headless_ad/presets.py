"""Named training presets. A preset is a full TrainConfig; every option can still be overridden.

Each task gets the same two recipes: a CPU one (small model, cosine/log-K scoring, minutes on
2 cores) and the paper's GPU scale; a preset only says what differs for its task (Darkroom's CPU
preset, for one, scores with dot products and trains on every 16th episode).
"""

from __future__ import annotations

from dataclasses import replace

from headless_ad.action_embeddings import ActionScoring
from headless_ad.collect import CollectConfig
from headless_ad.model import ModelConfig
from headless_ad.train_config import (
    EvaluationConfig,
    OptimisationConfig,
    RuntimeConfig,
    TrainConfig,
    replace_options,
)

CPU = TrainConfig(
    model=ModelConfig(d_model=64, n_layers=3, n_heads=4),
    scoring=ActionScoring(similarity="cosine", temperature=0.3, scale_by_log_actions=True),
    optimisation=OptimisationConfig(batch_size=16, learning_rate=3e-3, total_steps=6_000),
    evaluation=EvaluationConfig(eval_every=2_000),
    # Measured: bf16 autocast gains under 5% at this width on CPU; fp32 runs anywhere.
    runtime=RuntimeConfig(threads=2, precision="fp32"),
)
PAPER = TrainConfig(
    model=ModelConfig(d_model=512, n_layers=4, n_heads=8, dropout=0.1),
    optimisation=OptimisationConfig(batch_size=32, learning_rate=3e-4, warmup_steps=2_000, total_steps=200_000),
    evaluation=EvaluationConfig(eval_every=10_000),
    runtime=RuntimeConfig(checkpoint_every=5_000),
)


def for_task(recipe: TrainConfig, task: str, collect: CollectConfig | None = None, **changes) -> TrainConfig:
    """`recipe` for `task`; `changes` by option name (see replace_options)."""
    return replace_options(recipe, task=task, collect=collect or CollectConfig(task=task), **changes)


def episodic_macro_actions(task: str, eval_suites: tuple[str, ...], **changes) -> TrainConfig:
    """The CPU recipe for episodic tasks whose instances offer lists of macro-actions, chosen on
    Darkroom (docs/design.md); `changes` by option name."""
    recipe = for_task(
        CPU,
        task,
        # Long enough for Q-learning to converge on Darkroom's far goals (3 actions away) too;
        # instances offer 25-50 of the train actions, so the model meets many action-set sizes.
        CollectConfig(num_instances=2_000, task=task, horizon=4_000, train_suite="min_actions=25"),
        # The prompt's pull on attention must not grow from the 50 training to 75 or 125 actions.
        model=replace(CPU.model, prompt_key_bias=True),
        # Dot-product scores: the model must be able to act uniformly at random (Q-learning's
        # first episodes), which needs a near-zero output; cosine scores discard the norm.
        scoring=ActionScoring(),
        seq_len=200,
        start_window_share=0.2,
        # Every 16th episode per window: a 200-step window spans Q-learning's whole learning
        # phase, 16x steeper than its own curve (see docs/design.md).
        episode_stride=16,
        total_steps=6_000,
        eval_every=0,
        eval_horizon=4_000,
        eval_instances=50,
        eval_suites=eval_suites,
        # The greedy policy repeats one macro-action and never reaches a goal (docs/families/minigrid.md).
        eval_selection=("sample",),
        # Annealed from 0.8 to 0.3 over each instance's first 200 episodes: a sliding window cannot
        # tell the model how long it has acted, so it keeps Q-learning's early exploration on far
        # goals. Chosen on validation rooms (train goals, test actions, seed 77; see docs/design.md).
        sample_temperature=0.8,
        final_sample_temperature=0.3,
        anneal_episodes=200,
    )
    return replace_options(recipe, **changes)


BANDIT = for_task(
    CPU,
    "bandit",
    model=replace(CPU.model, reward_gated_action=True),
    # Dot-product scores: a near-zero output is uniform over any action set, as Thompson Sampling's
    # first draws are; cosine scores cannot express it (0.22 nats from uniform at step 0) and scored
    # 0.814 on validation bandits against 0.856 / 0.890 for dot, two seeds.
    scoring=replace(CPU.scoring, similarity="dot"),
    total_steps=7_000,
    eval_every=3_500,
    # Min-p 0.2 at temperature 1: against the best of 13 temperature schedules (a constant 0.6) on
    # validation bandits (seeds 77-79, not the reported suites), 0.883 / 0.894 against 0.856 / 0.890
    # for training seeds 0 / 1, and 1.29 / 1.19 / 1.12 against 0.94 / 0.99 / 0.78 on 100 validation
    # arms (seed 80) for seeds 0-2: the tail of unlikely arms grows with the arm count, and a
    # temperature cold enough to cut it also sharpens the likely arms
    # (docs/results/quality_per_minute.md).
    sample_temperature=1.0,
    sample_min_p=0.2,
)


PRESETS: dict[str, tuple[str, TrainConfig]] = {
    "bandit": (
        "Bernoulli bandits, CPU preset (the demo): a 0.16M-parameter model, about 11 minutes on 2 cores.",
        BANDIT,
    ),
    "bandit-30min": (
        "Bernoulli bandits, CPU recipe for 30 minutes on 2 cores: the bandit preset for 20,000 compiled "
        "steps; about 28 minutes.",
        # On validation bandits (seeds 77-79) 1.002 / 0.994 against 0.958 / 0.934 after 15,000 steps
        # and 0.883 / 0.894 after 7,000 (training seeds 0 / 1; docs/results/quality_per_minute.md).
        replace_options(
            BANDIT,
            total_steps=20_000,
            compile=True,
            eval_every=2_000,
            eval_suites=("all_new", "num_100"),
            eval_selection=("sample",),
        ),
    ),
    "bandit-paper": (
        "Bernoulli bandits at the paper's scale (d_model 512, 4 layers, batch 32, 200k steps): for a GPU.",
        for_task(PAPER, "bandit", eval_suites=("all_new", "num_25", "num_50")),
    ),
    "contextual-bandit": (
        "Linear contextual bandits (2-d contexts, 4-20 arms), CPU preset: LinUCB histories, about 25 minutes.",
        for_task(CPU, "contextual_bandit", eval_suites=("eval", "num_100"), ema_decay=0.998),
    ),
    "contextual-bandit-30min": (
        "Linear contextual bandits, CPU recipe for 30 minutes on 2 cores: 7,500 compiled steps, a "
        "per-action memory readout and an annealed sampling temperature; about 26 minutes.",
        for_task(
            CPU,
            "contextual_bandit",
            # Each arm scored from its own history by a shared MLP: on validation bandits (seeds
            # 77-78) 1.014 / 1.022 against 0.864 / 0.831 without after 15,000 steps, and 1.003 /
            # 1.019 after 7,500 (training seeds 0 / 1; docs/results/quality_per_minute.md).
            model=replace(CPU.model, action_memory=16),
            eval_suites=("eval", "num_100"),
            ema_decay=0.998,
            # 25 min 38 s end to end alone on 2 cores (about 5.2 steps/s); at 5.35 steps/s 15,000
            # steps take about 47 training minutes, and the readout reaches LinUCB's level by 4,500.
            total_steps=7_500,
            compile=True,
            eval_every=1_500,
            # From 1.5 to 0.4 over the 300 steps: hotter than the demo's constant 1 while the model
            # explores, colder once it commits. Chosen on validation bandits (seeds 77-78) among 19
            # schedules; on two training seeds constant 1 scored 0.82 / 0.80 there, this one
            # 0.86 / 0.83 (docs/results/quality_per_minute.md).
            sample_temperature=1.5,
            final_sample_temperature=0.4,
            anneal_steps=300,
        ),
    ),
    "contextual-bandit-paper": (
        "Linear contextual bandits at the paper's scale (d_model 512, 4 layers, batch 32, 200k steps): for a GPU.",
        for_task(PAPER, "contextual_bandit", eval_suites=("eval", "num_25", "num_50")),
    ),
    "darkroom": (
        "Darkroom 9x9 with 3-move action sequences, CPU preset: 2,000 Q-learning histories of 4,000 steps.",
        episodic_macro_actions("darkroom", ("test_goals/test", "train_goals/train")),
    ),
    "darkroom-30min": (
        "Darkroom's CPU recipe for 30 minutes on 2 cores: the darkroom preset with a per-action memory "
        "readout and 128-wide action embeddings, 8,000 compiled steps; about 25 minutes.",
        episodic_macro_actions(
            "darkroom",
            ("test_goals/test",),
            # Each macro-action scored from what the window wrote under it; 128-wide embeddings keep
            # 75 or 125 actions orthonormal, without which the readout's scores leak between actions
            # (0.15 with the 75 test actions at width 64).
            model=replace(CPU.model, prompt_key_bias=True, action_memory=16, action_dim=128),
            # Compiled, 8,000 steps fit in 24 min 29 s alone on 2 cores. On validation rooms (seeds
            # 77-79, 200 each; training seeds 0-2) 0.95 / 1.16 / 0.97 against 0.87 / 1.07 / 0.95 for
            # 6,000 steps uncompiled (docs/results/quality_per_minute.md).
            total_steps=8_000,
            compile=True,
            # The in-training curve gives the minutes to a first 0.8 on the held-out goals.
            eval_every=2_000,
        ),
    ),
    "minigrid": (
        "MiniGrid DoorKey-5x5 with 3-primitive macro-actions, CPU preset: 2,000 Q-learning histories of "
        "4,000 steps, about 27 minutes on 2 cores.",
        # Darkroom's recipe, trained for as long as 30 minutes on 2 cores allow: the model learns
        # DoorKey late (on validation layouts 0.818 of Q-learning after 6,000 steps, 0.866 after
        # 18,000, mean of 3 seeds; docs/families/minigrid.md).
        episodic_macro_actions("minigrid", ("test_layouts/test", "train_layouts/train"), total_steps=18_000),
    ),
    "darkroom-paper": (
        "Darkroom at the reference's scale (10,000 histories, d_model 512, 4 layers, batch 64, 30k steps): for a GPU.",
        for_task(
            PAPER,
            "darkroom",
            # The CPU preset's data recipe (measured on CPU only; see docs/design.md): 4,000-step histories
            # of rooms with 25-50 train actions, every 16th episode per window, the prompt key bias.
            CollectConfig(num_instances=10_000, task="darkroom", horizon=4_000, train_suite="min_actions=25"),
            model=replace(PAPER.model, prompt_key_bias=True),
            seq_len=200,
            start_window_share=0.2,
            episode_stride=16,
            batch_size=64,
            warmup_steps=500,
            total_steps=30_000,
            compile=True,
            eval_horizon=4_000,
            eval_instances=50,
            eval_suites=("test_goals/test", "test_goals/all", "train_goals/train"),
        ),
    ),
    "cpu": (
        "The CPU recipe for any task, your own included: pass --task and --collect.task (the same name "
        "or package.module:Task) and --eval-suites (none by default).",
        for_task(CPU, "bandit", eval_suites=()),
    ),
}
