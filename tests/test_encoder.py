"""Loading through the user path, batched encoding, and the errors a user sees."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from encoder import Encoder, ItemInput, load_encoder
from encoder.errors import EncoderError
from encoder.fingerprint import model_fingerprint
from encoder.registry import TINY_MODEL
from simmim.models import item_text
from simmim.settings import Settings
from tests.encoder_fixtures import picture, tiny_settings, write_tiny_weights


def _settings(weights: Path, **encoder: object) -> Settings:
    return Settings(encoder=tiny_settings(weights, **encoder))  # type: ignore[arg-type]


def test_loads_user_weights_file_and_matches_open_clip(
    tiny_encoder: Encoder, tiny_weights: Path
) -> None:
    """Our towers give exactly what open_clip's own encode_image / encode_text give."""
    reference, _, preprocess = open_clip.create_model_and_transforms(
        TINY_MODEL, pretrained=str(tiny_weights)
    )
    reference.eval()
    tokenizer = open_clip.get_tokenizer(TINY_MODEL)
    images = [picture(i) for i in range(3)]
    texts = ["rates rise again", "a chart going down", "quarterly earnings beat"]
    with torch.no_grad():
        want_v = reference.encode_image(
            torch.stack([preprocess(im) for im in images]), normalize=True
        )
        want_t = reference.encode_text(tokenizer(texts), normalize=True)
    got_v, errors = tiny_encoder.encode_images(images)
    assert errors == {}
    torch.testing.assert_close(torch.from_numpy(got_v), want_v, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        torch.from_numpy(tiny_encoder.encode_texts(texts)), want_t, atol=1e-5, rtol=1e-4
    )
    assert tiny_encoder.fingerprint.startswith(f"{TINY_MODEL}/sha256:")
    assert tiny_encoder.fingerprint.endswith("+fusion:none")


def test_cpu_int8_is_the_default_and_stays_close_to_fp32(
    tiny_weights: Path, tiny_encoder: Encoder
) -> None:
    assert Settings().encoder.cpu_int8 is True
    quantized = load_encoder(_settings(tiny_weights, cpu_int8=True))
    kinds = {type(m).__module__ for m in quantized.backbone.model.modules()}
    assert any("quantized" in kind for kind in kinds)
    images = [picture(i) for i in range(6)]
    texts = ["bank shares slide", "oil rallies", "new chip unveiled"]
    cos_v = np.sum(
        quantized.encode_images(images)[0] * tiny_encoder.encode_images(images)[0], axis=1
    )
    cos_t = np.sum(quantized.encode_texts(texts) * tiny_encoder.encode_texts(texts), axis=1)
    assert cos_v.min() > 0.99 and cos_t.min() > 0.99
    assert quantized.fingerprint == tiny_encoder.fingerprint  # same model, same space


def test_images_from_paths_bytes_and_pil_agree(tiny_encoder: Encoder, tmp_path: Path) -> None:
    image = picture(7)
    path = tmp_path / "p.png"
    image.save(path)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    vectors, errors = tiny_encoder.encode_images([image, path, str(path), buffer.getvalue()])
    assert errors == {}
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    for row in range(1, 4):
        np.testing.assert_allclose(vectors[row], vectors[0], atol=1e-5)


def test_a_bad_image_is_reported_per_item_and_the_batch_goes_on(
    tiny_encoder: Encoder, tmp_path: Path
) -> None:
    truncated = io.BytesIO()
    picture(1, (200, 150)).save(truncated, format="JPEG")
    inputs = [
        picture(0),
        b"<html>not an image</html>",
        tmp_path / "missing.jpg",
        truncated.getvalue()[:300],
        picture(2),
    ]
    vectors, errors = tiny_encoder.encode_images(inputs)
    assert sorted(errors) == [1, 2, 3]
    assert "not a readable image" in errors[1]
    assert "cannot read" in errors[2]
    assert np.all(vectors[[1, 2, 3]] == 0)
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 4]], axis=1), 1.0, rtol=1e-5)


def test_decompression_bomb_is_refused(tiny_weights: Path) -> None:
    encoder = load_encoder(
        Settings(encoder=tiny_settings(tiny_weights), max_image_pixels=100 * 100)
    )  # type: ignore[arg-type]
    buffer = io.BytesIO()
    picture(3, (400, 400)).save(buffer, format="PNG")
    _, errors = encoder.encode_images([buffer.getvalue(), picture(4, (90, 90))])
    assert list(errors) == [0]
    assert "image too large" in errors[0]


def test_items_stream_in_batches_with_the_three_spaces(tiny_encoder: Encoder) -> None:
    items = (
        ItemInput(
            text=None if i % 5 == 0 else f"headline number {i}",
            image=None if i % 3 == 0 and i % 5 != 0 else picture(i),
            key=f"item-{i}",
        )
        for i in range(1, 21)
    )
    batches = list(tiny_encoder.encode_items(items, batch_size=8, keep_attention=True))
    assert [len(b) for b in batches] == [8, 8, 4]
    keys = [key for b in batches for key in b.keys]
    assert keys == [f"item-{i}" for i in range(1, 21)]
    for batch in batches:
        for row in range(len(batch)):
            has_v, has_t = batch.has_image[row], batch.has_text[row]
            mean = batch.image[row] + batch.text[row]
            np.testing.assert_allclose(batch.fused[row], mean / np.linalg.norm(mean), atol=1e-5)
            assert np.any(batch.image[row] != 0) == has_v
            assert np.any(batch.text[row] != 0) == has_t
        assert batch.visual_weights is not None and batch.text_weights is not None
        np.testing.assert_allclose(
            batch.visual_weights.sum(1), batch.has_image.astype(float), atol=1e-5
        )


def test_threaded_decoding_gives_the_same_vectors(
    tiny_weights: Path, tiny_encoder: Encoder
) -> None:
    inline = load_encoder(_settings(tiny_weights, workers=0))
    images = [picture(i) for i in range(10)]
    np.testing.assert_allclose(
        inline.encode_images(images)[0], tiny_encoder.encode_images(images)[0], atol=1e-6
    )


def test_item_text_joins_title_and_lead() -> None:
    assert (
        item_text("Fed holds", "Rates unchanged. More below")
        == "Fed holds. Rates unchanged. More below"
    )
    assert item_text(None, "  ") is None
    assert len(item_text("t", "x" * 10_000) or "") == 2000


# ---- loading errors: each one names the input and what to do


def test_unknown_model_lists_what_to_do(tiny_weights: Path) -> None:
    with pytest.raises(EncoderError, match="unknown open_clip model 'ViT-Nope'"):
        load_encoder(Settings(encoder={"model": "ViT-Nope", "pretrained": "none"}))  # type: ignore[arg-type]


def test_unknown_tag_lists_the_known_ones() -> None:
    with pytest.raises(EncoderError) as info:
        load_encoder(Settings(encoder={"model": "ViT-B-32", "pretrained": "laion_typo"}))  # type: ignore[arg-type]
    assert "laion2b_s34b_b79k" in str(info.value)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match=r"weights file .*nope\.safetensors does not exist"):
        load_encoder(_settings(tmp_path / "nope.safetensors"))


def test_weights_for_another_architecture_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    wrong = tmp_path / "wrong.safetensors"
    save_file({"visual.proj": torch.zeros(3, 3)}, str(wrong))
    with pytest.raises(EncoderError, match="cannot"):
        load_encoder(_settings(wrong))


def test_no_network_and_no_cache_is_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(
        huggingface_hub.constants, "HF_HUB_OFFLINE", True
    )  # never touch the network
    settings = Settings(
        encoder={"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "cache_dir": str(tmp_path)}
    )  # type: ignore[arg-type]
    with pytest.raises(EncoderError) as info:
        load_encoder(settings)
    message = str(info.value)
    assert "ViT-B-32 / laion2b_s34b_b79k" in message
    assert "could not be downloaded" in message
    assert "SIMMIM_ENCODER__PRETRAINED=" in message
    assert TINY_MODEL in message


def test_cuda_requested_without_a_gpu(tiny_weights: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EncoderError, match="no CUDA GPU"):
        load_encoder(_settings(tiny_weights, device="cuda"))


def test_fingerprint_follows_the_weights(tmp_path: Path, tiny_weights: Path) -> None:
    other = write_tiny_weights(tmp_path / "other.safetensors", seed=99)
    a = model_fingerprint(_settings(tiny_weights).encoder)
    b = model_fingerprint(_settings(other).encoder)
    assert a != b
    assert model_fingerprint(Settings().encoder) == "ViT-B-32/laion2b_s34b_b79k+fusion:none"


def test_text_tower_cut_at_the_longest_text_equals_the_full_context(
    tiny_weights: Path,
) -> None:
    """Cutting the tower at the batch's longest text changes nothing (causal mask, pooling
    at the end-of-text token): embeddings and token states equal open_clip's full pass.
    In int8 (activations quantized by their range, which the padding shared) it stays as
    close to fp32 as the full int8 pass."""
    from encoder.towers import _needed_length, text_tower

    fp32 = load_encoder(_settings(tiny_weights))
    int8 = load_encoder(_settings(tiny_weights, cpu_int8=True))
    model = fp32.backbone.model
    ids = fp32.backbone.tokenizer(["rates", "bank shares slide after the results", "oil"])
    length = _needed_length(model, ids)
    assert length == int((ids[1] != 0).sum()) < ids.shape[1]

    def full_pass(m):  # type: ignore[no-untyped-def]
        return m.forward_intermediates(
            text=ids, text_indices=1, normalize_intermediates=True, normalize=True
        )

    with torch.inference_mode():
        got, full = text_tower(model, ids), full_pass(model)
        cut_int8 = text_tower(int8.backbone.model, ids).embeds
        full_int8 = full_pass(int8.backbone.model)["text_features"]
    torch.testing.assert_close(got.embeds, full["text_features"].float(), atol=1e-5, rtol=1e-4)
    states = full["text_intermediates"][-1]
    torch.testing.assert_close(
        got.token_states[:, :length], states[:, :length], atol=1e-5, rtol=1e-4
    )
    assert got.token_states.shape == states.shape and not got.token_states[:, length:].any()
    reference = full["text_features"]
    cut_cos = (cut_int8 * reference).sum(1)
    full_cos = (full_int8 * reference).sum(1)
    assert cut_cos.min() >= 0.99 and (cut_cos >= full_cos - 0.005).all()


def test_texts_sorted_by_length_come_back_in_their_order(tiny_encoder: Encoder) -> None:
    texts = [("word " * (i * 7 % 23)).strip() or "x" for i in range(50)]
    one_by_one = np.concatenate([tiny_encoder.encode_texts([t]) for t in texts])
    np.testing.assert_allclose(tiny_encoder.encode_texts(texts), one_by_one, atol=1e-5)
