"""The GPU path: the same weights give the same spaces on CUDA as on CPU, and a fusion
trained on the GPU loads and serves on a CPU-only machine.

Skipped where torch sees no CUDA GPU (CI has none); run on a GPU machine with
`pytest tests/test_cuda.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from encoder import Encoder, ItemInput, load_encoder
from encoder.device import autocast_dtype
from encoder.train.training import FusionTrainConfig, train_fusion
from simmim.settings import Settings
from tests.encoder_fixtures import picture, tiny_settings
from tests.test_training import boilerplate_corpus

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA GPU")


def _encoder(weights: Path, device: str, **extra: object) -> Encoder:
    return load_encoder(Settings(encoder=tiny_settings(weights, device=device, **extra)))  # type: ignore[arg-type]


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_cuda_and_cpu_give_the_same_spaces(tiny_weights: Path) -> None:
    cpu, gpu = _encoder(tiny_weights, "cpu"), _encoder(tiny_weights, "cuda")
    assert gpu.device.type == "cuda" and autocast_dtype(gpu.device) is not None
    assert gpu.fingerprint == cpu.fingerprint  # one index serves both machines
    images = [picture(i) for i in range(24)]
    texts = [f"headline number {i} about rates, oil and chips" for i in range(24)]
    got_cpu, errors_cpu = cpu.encode_images(images)
    got_gpu, errors_gpu = gpu.encode_images(images)
    assert errors_cpu == errors_gpu == {}
    assert _row_cosines(got_cpu, got_gpu).min() >= 0.99
    assert _row_cosines(cpu.encode_texts(texts), gpu.encode_texts(texts)).min() >= 0.99
    items = [ItemInput(text=t, image=im) for t, im in zip(texts, images, strict=True)]
    fused_cpu = np.concatenate([b.fused for b in cpu.encode_items(items)])
    fused_gpu = np.concatenate([b.fused for b in gpu.encode_items(items)])
    assert fused_gpu.dtype == np.float32  # stored as float32 whatever the autocast
    assert _row_cosines(fused_cpu, fused_gpu).min() >= 0.99
    # What search returns: the nearest item of every query is the same on both, except
    # where two items are nearly tied (bf16 may order a near-tie either way).
    scores_cpu = cpu.encode_texts(texts) @ fused_cpu.T
    scores_gpu = gpu.encode_texts(texts) @ fused_gpu.T
    top_two = np.sort(scores_cpu, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] >= 0.01
    assert clear.sum() >= len(texts) // 2
    assert np.array_equal(scores_cpu[clear].argmax(1), scores_gpu[clear].argmax(1))


def test_a_fusion_trained_on_the_gpu_serves_on_cpu(tiny_weights: Path, tmp_path: Path) -> None:
    gpu = _encoder(tiny_weights, "cuda", batch_size=64)
    pairs = boilerplate_corpus(tmp_path, 200)
    out = tmp_path / "fusion.safetensors"
    report = train_fusion(gpu, pairs, out, FusionTrainConfig(epochs=25, patience=6))
    for direction in ("text_to_item", "image_to_item"):
        assert report.trained[direction][5] >= report.baseline[direction][5] + 0.10

    trained_gpu = _encoder(tiny_weights, "cuda", fusion_checkpoint=str(out))
    trained_cpu = _encoder(tiny_weights, "cpu", fusion_checkpoint=str(out))
    assert trained_cpu.fingerprint == trained_gpu.fingerprint
    items = [ItemInput(text=p.text, image=p.image) for p in pairs[:16]]
    on_gpu = np.concatenate([b.fused for b in trained_gpu.encode_items(items)])
    on_cpu = np.concatenate([b.fused for b in trained_cpu.encode_items(items)])
    assert _row_cosines(on_cpu, on_gpu).min() >= 0.99
