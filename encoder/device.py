"""Which device to run on, and the matching autocast."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from encoder.errors import EncoderError


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then CPU; an explicit choice must be available."""
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise EncoderError(
            "device 'cuda' requested but torch sees no CUDA GPU",
            hint="set SIMMIM_ENCODER__DEVICE=auto or cpu, or install a CUDA build of torch",
        )
    if choice == "mps" and not torch.backends.mps.is_available():
        raise EncoderError("device 'mps' requested but it is not available", hint="use auto or cpu")
    return torch.device(choice)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the GPU has it, else fp16 on GPUs; full fp32 on CPU (exact, and not slower)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


@contextlib.contextmanager
def inference(device: torch.device) -> Iterator[None]:
    dtype = autocast_dtype(device)
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=dtype):
                yield
