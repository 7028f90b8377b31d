"""Loading the open_clip backbone (and fusion) from settings, with errors that say what to do."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import open_clip
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from open_clip.model import CLIP

from encoder.device import resolve_device
from encoder.errors import EncoderError
from encoder.fingerprint import RANDOM_WEIGHTS, backbone_fingerprint, is_weights_path
from encoder.fusion import FusionConfig, SemanticMemoryFusion, load_fusion
from encoder.quantize import quantize_for_cpu
from encoder.registry import TINY_MODEL, register_model_configs
from encoder.towers import enable_token_outputs
from simmim.settings import EncoderSettings

log = logging.getLogger(__name__)


@dataclass
class Backbone:
    model: CLIP
    preprocess: Callable[[Any], torch.Tensor]  # PIL image -> [3, H, W]
    tokenizer: Callable[[list[str]], torch.Tensor]  # texts -> [batch, context] ids
    fingerprint: str
    device: torch.device

    @property
    def embed_dim(self) -> int:
        return int(self.model.text_projection.shape[1])

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return int(size[0] if isinstance(size, tuple | list) else size)


def _no_weights_error(settings: EncoderSettings, reason: str) -> EncoderError:
    where = settings.cache_dir or "the open_clip / Hugging Face cache (~/.cache/huggingface)"
    return EncoderError(
        f"weights for {settings.model} / {settings.pretrained} are not in {where} and could "
        f"not be downloaded (no network?): {reason}",
        hint=(
            "download them on a connected machine and set SIMMIM_ENCODER__PRETRAINED="
            "/path/to/open_clip_model.safetensors (or SIMMIM_ENCODER__CACHE_DIR), or use the "
            f"test model: SIMMIM_ENCODER__MODEL={TINY_MODEL} SIMMIM_ENCODER__PRETRAINED=none"
        ),
    )


def _pretrained_argument(settings: EncoderSettings) -> str | None:
    """Validate ``pretrained`` before open_clip sees it, so each mistake gets its own message."""
    model, pretrained = settings.model, settings.pretrained
    if model.startswith(("hf-hub:", "local-dir:")):
        return None  # the schema carries config and weights
    if model not in open_clip.list_models():
        raise EncoderError(
            f"unknown open_clip model {model!r}",
            hint=f"choose one of `open_clip.list_models()`, e.g. ViT-B-32, or {TINY_MODEL}",
        )
    if pretrained.lower() in RANDOM_WEIGHTS:
        return None
    if is_weights_path(pretrained):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise EncoderError(
                f"weights file {path} does not exist",
                hint="fix SIMMIM_ENCODER__PRETRAINED (a .safetensors or torch file)",
            )
        return str(path)
    if not open_clip.get_pretrained_cfg(model, pretrained):
        tags = open_clip.list_pretrained_tags_by_model(model)
        raise EncoderError(
            f"{pretrained!r} is not a pretrained tag of {model}",
            hint=f"known tags: {', '.join(tags) or 'none'}; or give a local weights file",
        )
    return pretrained


HUB_HOST = "huggingface.co"
REACH_TIMEOUT_S = 3.0


def _weights_available(settings: EncoderSettings, pretrained: str) -> tuple[str | None, bool]:
    """(why the weights of a pretrained tag cannot be had, or None; whether they are cached).

    Cached weights load with the hub client offline; others only when their server answers.
    A machine without network learns it in seconds, not after the hub client's retries."""
    cfg = open_clip.get_pretrained_cfg(settings.model, pretrained) or {}
    if "file" in cfg:
        return None, True
    cache_dir = str(settings.cache_dir) if settings.cache_dir else None
    hub = str(cfg.get("hf_hub") or "")
    if hub:
        repo, filename = os.path.split(hub)  # as open_clip reads it: "org/model/[file]"
        names = [filename] if filename else []
        names += ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in names:
            found = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return None, True
        host = HUB_HOST
    else:
        url = str(cfg.get("url") or "")
        local = Path(cache_dir or Path("~/.cache/clip").expanduser()) / os.path.basename(url)
        if not url or local.is_file():
            return None, True
        host = urlsplit(url).hostname or ""
    if hub_constants.HF_HUB_OFFLINE:
        return "not cached, and HF_HUB_OFFLINE is set", False
    try:
        socket.create_connection((host, 443), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        return f"not cached, and {host} cannot be reached ({exc.strerror or exc})", False
    return None, False


@contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """huggingface_hub's own offline switch, for one load: cached weights are then read
    without a single request (the client otherwise checks for newer files, and retries)."""
    previous = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = previous or offline
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous


def load_backbone(settings: EncoderSettings, *, trainable: bool = False) -> Backbone:
    """The towers, ready for inference (or for fine-tuning with ``trainable``)."""
    register_model_configs()
    device = resolve_device(settings.device)
    pretrained = _pretrained_argument(settings)
    if pretrained is None and not settings.model.startswith(("hf-hub:", "local-dir:")):
        log.warning(
            "%s with random weights (pretrained=none): for tests and benchmarks", settings.model
        )
        torch.manual_seed(settings.seed)  # the same "random" model every time
    cached = False
    if pretrained is not None and not is_weights_path(pretrained):
        problem, cached = _weights_available(settings, pretrained)
        if problem is not None:
            raise _no_weights_error(settings, problem)
    try:
        with _hub_offline(cached):
            model, _, preprocess = open_clip.create_model_and_transforms(
                settings.model,
                pretrained=pretrained,
                device=device,
                precision="fp32",
                cache_dir=str(settings.cache_dir) if settings.cache_dir else None,
                weights_only=True,  # never unpickle arbitrary objects
            )
    except RuntimeError as exc:
        if "Failed to download" in str(exc):
            raise _no_weights_error(settings, str(exc).split(": ", 1)[-1][:300]) from exc
        raise EncoderError(
            f"cannot build {settings.model} with {settings.pretrained}: {exc}"
        ) from exc
    except (OSError, ValueError, KeyError) as exc:
        raise EncoderError(
            f"cannot load weights {settings.pretrained} into {settings.model}: {exc}",
            hint="check the file matches the architecture (SIMMIM_ENCODER__MODEL)",
        ) from exc
    assert isinstance(model, CLIP)
    enable_token_outputs(model)
    model.eval().requires_grad_(False)
    if device.type == "cpu" and settings.cpu_int8 and not trainable:
        model = quantize_for_cpu(model)  # type: ignore[assignment]
    tokenizer = open_clip.get_tokenizer(settings.model)
    return Backbone(model, preprocess, tokenizer, backbone_fingerprint(settings), device)  # type: ignore[arg-type]


def fusion_config_for(backbone: Backbone, width: int | None = None) -> FusionConfig:
    model = backbone.model
    vision_width = int(model.visual.conv1.out_channels)
    text_width = int(model.transformer.width)
    return FusionConfig(
        embed_dim=backbone.embed_dim,
        vision_width=vision_width,
        text_width=text_width,
        width=width or min(256, max(vision_width, text_width)),
    )


def load_fusion_for(backbone: Backbone, path: Path | None) -> SemanticMemoryFusion:
    """The trained fusion, or an untrained one (which equals the CLIP mean exactly)."""
    if path is not None:
        fusion = load_fusion(path.expanduser(), backbone=backbone.fingerprint)
    else:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(0)  # untrained weights are unused (gate 0) but kept reproducible
        fusion = SemanticMemoryFusion(fusion_config_for(backbone))
        torch.random.set_rng_state(generator_state)
    return fusion.to(backbone.device).eval().requires_grad_(False)
