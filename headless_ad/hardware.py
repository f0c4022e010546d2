"""Devices and numeric precision, resolved from config strings with clear errors."""

from __future__ import annotations

from pathlib import Path

import torch


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` (GPU <local_rank> if CUDA is available, else CPU), `cpu`, `cuda` or `cuda:<i>`.
    Under torchrun a bare `cuda` means this process's own GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r} (auto, cpu, cuda, cuda:<index>)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} asked for, but this torch build sees no CUDA GPU")
        device = torch.device("cuda", local_rank if device.index is None else device.index)
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {name!r} (auto, cpu, cuda, cuda:<index>)")
    return device


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.float32
    # Without native bf16 instructions, CPU autocast to bf16 is slower than fp32.
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def check_compiler(device: torch.device) -> None:
    """--compile on the CPU builds C++ kernels (inductor): without a compiler it would fail at the
    first step, after the collection, so a missing compiler fails before any work instead (other
    build failures, such as missing Python headers, still surface at the first step)."""
    if device.type != "cpu":
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
    except ImportError:  # a torch without this helper: the compilation itself will say
        return
    try:
        get_cpp_compiler()
    except Exception as error:  # inductor raises its own InvalidCxxCompiler, among others
        raise ValueError(
            "--compile on the CPU needs a C++ compiler for inductor's kernels (g++ or clang++, or set CXX), "
            f"and inductor found none ({str(error).strip()}); install one, or train without --compile"
        ) from None
