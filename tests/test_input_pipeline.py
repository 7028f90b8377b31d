"""The input pipeline's fast paths give the model what open_clip's own preprocessing gives.

Reference path: a full decode and open_clip's transform (``Encoder.load_pixels``). Every
shortcut (uint8 resize with normalising on the device, JPEG DCT scaling, thumbnails, the
tensor resize the GPU decoder feeds) must land within cosine 0.99 of it, with the same
nearest neighbours on a seeded set.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from encoder import Encoder, ItemInput
from encoder.gpu_decode import decode_on_device, device_decodable
from encoder.pixels import Normaliser, PixelSpec, fit_tensor, fit_uint8
from encoder.stage_times import StageTimes
from encoder.towers import image_tower
from indexer.image_store import inspect_image, write_image
from simmim.images import ImageDecodeError
from simmim.paths import DataLayout
from simmim.thumbnails import needs_thumbnail
from tests.encoder_fixtures import picture


def photo(seed: int, size: tuple[int, int] = (400, 300)) -> Image.Image:
    """A photo-like picture: smooth gradients and noise under the shapes, so JPEG and
    resampling behave as on real photos (flat colour would hide their differences)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    ground = np.stack(
        [(xx * rng.uniform(0.2, 0.9) + yy * rng.uniform(0, 0.6) + rng.uniform(0, 255)) % 256] * 3,
        -1,
    )
    noisy = np.clip(ground + rng.normal(0, 10, ground.shape), 0, 255).astype(np.uint8)
    base = Image.fromarray(noisy)
    shapes = picture(seed, size)
    return Image.blend(base, shapes, 0.6)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def reference_vectors(encoder: Encoder, sources: list[object]) -> np.ndarray:
    """Full decode + open_clip's own preprocess + the image tower."""
    with torch.inference_mode():
        pixels = torch.stack([encoder.backbone.preprocess(_full(s)) for s in sources])
        return image_tower(encoder.backbone.model, pixels).embeds.numpy()


def _full(source: object) -> Image.Image:
    data = source if isinstance(source, bytes) else Path(str(source)).read_bytes()
    return Image.open(io.BytesIO(data)).convert("RGB")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def neighbours(vectors: np.ndarray, queries: np.ndarray) -> list[int]:
    return list((queries @ vectors.T).argmax(1))


@pytest.mark.parametrize("size", [(400, 300), (300, 400), (64, 64), (50, 90), (1000, 200)])
@pytest.mark.parametrize("model", ["ViT-B-32", "simmim-tiny"])
def test_uint8_resize_and_device_normalising_equal_open_clip_preprocess(
    size: tuple[int, int], model: str, tiny_encoder: Encoder
) -> None:
    """The same PIL resize, crop and normalisation: equal to float precision."""
    if model == "simmim-tiny":
        spec = tiny_encoder.pixel_spec
        preprocess = tiny_encoder.backbone.preprocess
    else:
        from open_clip.transform import PreprocessCfg, image_transform_v2

        cfg = open_clip.get_model_config(model)["vision_cfg"]
        pp = PreprocessCfg(size=cfg["image_size"])
        preprocess = image_transform_v2(pp, is_train=False)
        spec = PixelSpec(cfg["image_size"], pp.mean, pp.std)
    assert spec is not None
    image = photo(3, size)
    want = preprocess(image)
    got = Normaliser(spec, torch.device("cpu"))(fit_uint8(image, spec)[None])[0]
    assert fit_uint8(image, spec).dtype == torch.uint8
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pixel_spec_refuses_what_it_cannot_replay(tiny_encoder: Encoder) -> None:
    model = tiny_encoder.backbone.model
    saved = dict(model.visual.preprocess_cfg)
    try:
        model.visual.preprocess_cfg = {**saved, "interpolation": "bilinear"}
        assert PixelSpec.of(model) is None
        model.visual.preprocess_cfg = {**saved, "resize_mode": "longest"}
        assert PixelSpec.of(model) is None
        model.visual.preprocess_cfg = {**saved, "resize_mode": "squash"}
        assert PixelSpec.of(model) == PixelSpec(64, saved["mean"], saved["std"], squash=True)
    finally:
        model.visual.preprocess_cfg = saved


def test_fast_paths_stay_within_cosine_099_of_the_reference(
    tiny_encoder: Encoder, tmp_path: Path
) -> None:
    """DCT scaling (a 1200x900 JPEG decodes at 1/4 for a 64 px model), thumbnails and the
    GPU decoder's tensor resize: each close to the reference, same neighbours."""
    layout = DataLayout(tmp_path)
    encoder = tiny_encoder.with_fusion(None)
    encoder.thumbnail_size = 80
    originals = [jpeg(photo(seed, (1200, 900))) for seed in range(24)]
    reference = reference_vectors(encoder, originals)

    fast, errors = encoder.encode_images(originals)  # draft + uint8 resize + normalise
    assert errors == {}
    assert cosines(fast, reference).min() >= 0.99

    inputs = []
    for data in originals:
        stored = inspect_image(data, max_pixels=10**8, thumbnail_size=80)
        assert stored.thumbnail is not None
        write_image(layout, data, stored.sha256, thumbnail=stored.thumbnail, thumbnail_size=80)
        inputs.append(
            ItemInput(
                image=layout.image_path(stored.sha256),
                thumbnail=layout.thumbnail_path(stored.sha256, 80),
            )
        )
    with Image.open(inputs[0].thumbnail) as small:  # type: ignore[arg-type]
        assert min(small.size) == 80
    timings = StageTimes()
    from_thumbnails = np.concatenate(
        [b.image for b in encoder.encode_items(inputs, timings=timings)]
    )
    assert cosines(from_thumbnails, reference).min() >= 0.99
    assert timings.images == 24 and timings.seconds["decode"] > 0
    assert timings.seconds["read"] > 0 and timings.seconds["model"] > 0

    spec = encoder.pixel_spec
    assert spec is not None
    from torchvision.io import decode_jpeg

    with torch.inference_mode():
        tensors = [
            fit_tensor(decode_jpeg(torch.frombuffer(bytearray(d), dtype=torch.uint8)), spec)
            for d in originals
        ]
        pixels = Normaliser(spec, torch.device("cpu"))(torch.stack(tensors))
        by_tensor = image_tower(encoder.backbone.model, pixels).embeds.numpy()
    assert cosines(by_tensor, reference).min() >= 0.99

    queries = reference[::3] + np.random.default_rng(0).normal(0, 0.02, reference[::3].shape)
    want = neighbours(reference, queries)
    for vectors in (fast, from_thumbnails, by_tensor):
        assert neighbours(vectors, queries) == want
        assert neighbours(reference, vectors) == list(range(24))  # each finds its own picture


def test_thumbnails_are_made_once_lazily_and_only_when_they_pay(
    tiny_encoder: Encoder, tmp_path: Path
) -> None:
    layout = DataLayout(tmp_path)
    encoder = tiny_encoder.with_fusion(None)
    encoder.thumbnail_size = 80
    big, small = jpeg(photo(1, (640, 480))), jpeg(photo(2, (90, 70)))
    for data in (big, small):  # stored without copies, as an older data dir holds them
        write_image(layout, data, inspect_image(data, max_pixels=10**8).sha256)
    shas = [inspect_image(d, max_pixels=10**8).sha256 for d in (big, small)]
    items = [
        ItemInput(image=layout.image_path(s), thumbnail=layout.thumbnail_path(s, 80), key=s)
        for s in shas
    ]
    first = next(encoder.encode_items(items))
    copy = layout.thumbnail_path(shas[0], 80)
    assert copy.is_file() and not layout.thumbnail_path(shas[1], 80).exists()
    assert layout.image_to_read(shas[0], 80) == copy
    assert layout.image_to_read(shas[1], 80) == layout.image_path(shas[1])
    made = copy.stat().st_mtime_ns
    second = next(encoder.encode_items(items))
    assert copy.stat().st_mtime_ns == made  # read, not made again
    assert cosines(first.image, second.image).min() >= 0.999
    assert not needs_thumbnail(90, 70, 80) and needs_thumbnail(640, 480, 80)
    # a model larger than the copies reads the originals: the copy would be upsampled
    encoder.thumbnail_size = 48
    layout.thumbnail_path(shas[0], 48).write_bytes(b"not even an image")
    third = next(
        encoder.encode_items(
            [ItemInput(image=items[0].image, thumbnail=layout.thumbnail_path(shas[0], 48))]
        )
    )
    assert third.errors == {}


def test_a_corrupt_or_refused_image_keeps_its_reason_on_the_fast_path(
    tiny_encoder: Encoder, tmp_path: Path
) -> None:
    good = jpeg(photo(5))
    missing = tmp_path / "gone.jpg"
    batch = next(
        tiny_encoder.encode_items(
            [
                ItemInput(image=good),
                ItemInput(image=good[:200] + b"\0" * 50),
                ItemInput(image=missing),
                ItemInput(image=b"not an image", text="still has text"),
            ]
        )
    )
    assert set(batch.errors) == {1, 2, 3}
    assert "cannot read" in batch.errors[2]
    assert batch.has_image.tolist() == [True, False, False, False]
    assert batch.has_text[3]


def test_which_files_the_gpu_may_decode() -> None:
    limit = {"max_pixels": 10**7, "formats": ["JPEG", "PNG"]}
    data = jpeg(photo(1))
    assert device_decodable(data, **limit)  # type: ignore[arg-type]
    assert not device_decodable(data, max_pixels=1000, formats=["JPEG"])  # a bomb: CPU says why
    assert not device_decodable(data, max_pixels=10**7, formats=["PNG"])  # JPEG not allowed
    png = io.BytesIO()
    photo(1).save(png, format="PNG")
    assert not device_decodable(png.getvalue(), **limit)  # type: ignore[arg-type]
    rotated = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(1).save(rotated, format="JPEG", exif=exif)
    assert not device_decodable(rotated.getvalue(), **limit)  # nvJPEG would not turn it
    cmyk = io.BytesIO()
    photo(1).convert("CMYK").save(cmyk, format="JPEG")
    assert not device_decodable(cmyk.getvalue(), **limit)  # type: ignore[arg-type]
    assert not device_decodable(data[:100], **limit)  # type: ignore[arg-type]


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
def test_gpu_decoding_matches_the_cpu_path_and_falls_back_per_file(tiny_weights: Path) -> None:
    from encoder import load_encoder
    from simmim.settings import Settings
    from tests.encoder_fixtures import tiny_settings

    encoder = load_encoder(Settings(encoder=tiny_settings(tiny_weights, device="cuda")))  # type: ignore[arg-type]
    assert encoder.gpu_decode
    originals = [jpeg(photo(seed, (640, 480))) for seed in range(16)]
    broken = originals[3][:400] + b"\xff\xd9"
    with torch.inference_mode():
        reference = (
            image_tower(
                encoder.backbone.model,
                torch.stack([encoder.backbone.preprocess(_full(d)) for d in originals]).cuda(),
            )
            .embeds.cpu()
            .numpy()
        )
    got, errors = encoder.encode_images([*originals, broken, b"junk"])
    assert cosines(got[:16], reference).min() >= 0.99
    assert set(errors) >= {17}
    decoded = decode_on_device([*originals[:2], b"\xff\xd8\xff" + b"\0" * 64], torch.device("cuda"))
    assert decoded[0] is not None and decoded[0].is_cuda and decoded[2] is None


def test_stage_times_add_up_across_threads() -> None:
    timings = StageTimes()
    with timings.timing("decode"):
        pass
    timings.add("decode", 0.5)
    timings.count(images=3, texts=2)
    assert timings.seconds["decode"] >= 0.5
    assert timings.as_dict()["images"] == 3
    assert timings.line().startswith("3 images, 2 texts: decode 0.50 s")
    with pytest.raises(ImageDecodeError):
        from encoder.pixels import read_bytes

        read_bytes(Path("/nonexistent/file.jpg"))


def test_images_thumbnails_command_fills_an_older_data_dir(
    cli,
    isolated_env: Path,  # type: ignore[no-untyped-def]
) -> None:
    """Images stored before thumbnails existed get their copies; a second run makes none;
    an unreadable original is named, not fatal."""
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import Item, Source, SourceKind

    cli("init")
    layout = DataLayout(isolated_env)
    datas = [jpeg(photo(1, (640, 480))), jpeg(photo(2, (100, 80))), jpeg(photo(3, (800, 600)))]
    shas = []
    for data in datas:
        sha = inspect_image(data, max_pixels=10**8).sha256
        write_image(layout, data, sha)  # no copy: the old way
        shas.append(sha)
    layout.image_path(shas[2]).write_bytes(b"\xff\xd8\xff broken")
    engine = make_engine(f"sqlite:///{isolated_env / 'simmim.db'}")
    with session_scope(session_factory(engine)) as session:
        source = Source(name="wire", kind=SourceKind.RSS, location="https://example.org/rss")
        session.add(source)
        session.add_all(
            [Item(source=source, title=f"t{i}", image_sha256=s) for i, s in enumerate(shas)]
        )
    out = " ".join(cli("images", "thumbnails").split())  # rich wraps long lines
    assert "1 made, 0 already there, 1 not needed" in out and "1 unreadable" in out
    assert shas[2][:12] in out
    assert layout.thumbnail_path(shas[0], 224).is_file()  # the default size
    assert not layout.thumbnail_path(shas[1], 224).exists()
    assert "0 made, 1 already there" in cli("images", "thumbnails")


def test_ingest_stores_the_copy_beside_the_original(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    data = jpeg(photo(4, (900, 600)))
    stored = inspect_image(data, max_pixels=10**8, thumbnail_size=256)
    assert stored.thumbnail is not None and (stored.width, stored.height) == (900, 600)
    write_image(layout, data, stored.sha256, thumbnail=stored.thumbnail, thumbnail_size=256)
    with Image.open(layout.thumbnail_path(stored.sha256, 256)) as copy:
        assert copy.size == (384, 256) and copy.format == "JPEG"
    assert layout.image_path(stored.sha256).read_bytes() == data  # the original, untouched
    assert (
        inspect_image(jpeg(photo(4, (300, 200))), max_pixels=10**8, thumbnail_size=256).thumbnail
        is None
    )


def test_a_preprocessing_the_stage_cannot_replay_keeps_open_clips_even_with_gpu_decode(
    tiny_encoder: Encoder,
) -> None:
    """No spec (another interpolation): every image goes through open_clip's transform on
    the CPU, never to the GPU decoder (which resizes by the spec), and none is lost."""
    encoder = tiny_encoder.with_fusion(None)
    encoder.pixel_spec, encoder._normalise, encoder.gpu_decode = None, None, True
    datas = [jpeg(photo(seed)) for seed in range(3)]
    assert all(isinstance(encoder.prepare_image(ItemInput(image=d)), torch.Tensor) for d in datas)
    vectors, errors = encoder.encode_images(datas)
    assert errors == {}
    assert cosines(vectors, reference_vectors(encoder, datas)).min() >= 0.9999
