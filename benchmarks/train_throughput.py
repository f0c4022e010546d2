"""Training throughput of one model under each numeric mode: fp32 and bf16 autocast, each with and
without torch.compile.

    python benchmarks/train_throughput.py --device cuda             (the paper's bandit model)
    python benchmarks/train_throughput.py --device cpu --d-model 64 --n-layers 3 --batch-size 16

Each mode runs the trainer's own step (window sampling from a memory-mapped store, fresh action
embeddings, forward, InfoNCE, backward, AdamW) and reports tokens/s, the data-loading share of
step time and model-FLOP utilisation against this device's matmul throughput for that dtype,
measured in the same run. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from headless_ad.action_embeddings import ActionScoring, embed_actions, random_action_embeddings, with_no_action_row
from headless_ad.hardware import resolve_device
from headless_ad.histories import WindowSampler, load_store, write_store
from headless_ad.losses import headless_loss
from headless_ad.model import HeadlessTransformer, ModelConfig

MODES = {
    "fp32": (torch.float32, False),
    "fp32+compile": (torch.float32, True),
    "bf16": (torch.bfloat16, False),
    "bf16+compile": (torch.bfloat16, True),
}


def synchronized_seconds(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def matmul_flops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 20) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    return 2 * size**3 * repeats / synchronized_seconds(lambda: [a @ b for _ in range(repeats)], device)


def write_random_store(path: Path, horizon: int, num_actions: int, num_histories: int = 512) -> None:
    """A bandit history store of uniformly random actions and rewards (throughput needs no learning)."""
    rng = np.random.default_rng(0)
    write_store(
        path,
        {"task": "bandit"},
        {
            "actions": rng.integers(0, num_actions, (num_histories, horizon)).astype(np.int16),
            "rewards": rng.integers(0, 2, (num_histories, horizon)).astype(np.float32),
            "action_mask": np.ones((num_histories, num_actions), dtype=bool),
        },
        overwrite=True,
    )


def measure_mode(
    config: ModelConfig, store: Path, batch_size: int, num_actions: int, steps: int,
    device: torch.device, dtype: torch.dtype, compiled: bool,
) -> dict[str, float]:  # fmt: skip
    torch.manual_seed(0)
    sampler = WindowSampler(load_store(store), config.max_steps, batch_size, seed=0, device=device)
    model = HeadlessTransformer(config).to(device)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    generator = torch.Generator(device=device).manual_seed(0)
    data_seconds = 0.0

    def step() -> None:
        nonlocal data_seconds
        start = time.perf_counter()
        batch = sampler.sample()
        data_seconds += time.perf_counter() - start
        embeddings = random_action_embeddings(batch_size, num_actions, config.d_model, generator, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            outputs = forward(
                embeddings, batch.action_mask, None,
                embed_actions(with_no_action_row(embeddings), batch.prev_actions), batch.prev_rewards,
            )  # fmt: skip
        loss, _ = headless_loss(outputs.float(), embeddings, batch.action_mask, batch.targets, ActionScoring())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    compile_seconds = synchronized_seconds(lambda: [step() for _ in range(3)], device)  # warm-up (and compile)
    data_seconds = 0.0
    seconds = synchronized_seconds(lambda: [step() for _ in range(steps)], device)
    tokens = batch_size * (config.max_steps + num_actions) * steps
    # Model FLOPs per token: 6 x matmul parameters (forward + backward) + attention (12 x layers x width x length).
    matmul_params = sum(p.numel() for p in model.parameters() if p.dim() == 2)
    flops_per_token = 6 * matmul_params + 12 * config.n_layers * config.d_model * (config.max_steps + num_actions)
    return {
        "tokens_per_second": tokens / seconds,
        "step_ms": 1e3 * seconds / steps,
        "data_fraction": data_seconds / seconds,
        "model_flops": flops_per_token * tokens / seconds,
        "warmup_seconds": compile_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-actions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    config = ModelConfig(d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, max_steps=args.seq_len)

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        write_random_store(store, args.seq_len, args.num_actions)
        results = {
            mode: measure_mode(config, store, args.batch_size, args.num_actions, args.steps, device, *MODES[mode])
            for mode in args.modes
        }
    size = 8192 if device.type == "cuda" else 1024
    peaks = {dtype: matmul_flops(device, dtype, size) for dtype in {MODES[mode][0] for mode in args.modes}}

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    tokens = args.batch_size * (args.seq_len + args.num_actions)
    print(
        f"`python benchmarks/train_throughput.py --device {args.device} --d-model {args.d_model} "
        f"--n-layers {args.n_layers} --batch-size {args.batch_size} --seq-len {args.seq_len} "
        f"--num-actions {args.num_actions} --threads {args.threads}` on {name}, "
        f"torch {torch.__version__}: {tokens:,} tokens per step, {args.steps} timed steps per mode.\n"
    )
    print("| mode | tokens/s | ms/step | data loading | MFU (vs same-dtype matmul peak) | warm-up |")
    print("|---|---|---|---|---|---|")
    for mode, r in results.items():
        peak = peaks[MODES[mode][0]]
        print(
            f"| {mode} | {r['tokens_per_second']:,.0f} | {r['step_ms']:.1f} | {100 * r['data_fraction']:.1f}% "
            f"| {100 * r['model_flops'] / peak:.0f}% of {peak / 1e12:.1f} TFLOP/s | {r['warmup_seconds']:.1f} s |"
        )


if __name__ == "__main__":
    main()
