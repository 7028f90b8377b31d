"""The demo's pictures, drawn with Pillow: price charts going up or down, simple scenes."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

SIZE = (320, 240)


def price_chart(trend: int, seed: int, tint: tuple[int, int, int] = (250, 250, 248)) -> bytes:
    """An area chart rising (trend 1, green), falling (-1, red) or flat (0, blue) on the
    company's tint: bold shapes and colours that even the tiny model can learn."""
    rng = random.Random(seed)
    image = Image.new("RGB", SIZE, tint)
    draw = ImageDraw.Draw(image)
    value, points = 120.0, []
    for i in range(30):
        value += trend * rng.uniform(3.0, 6.0) + rng.uniform(-3, 3)
        value = max(20.0, min(220.0, value))
        points.append((i * 11.0, 240 - value))
    color = (30, 160, 60) if trend > 0 else (210, 40, 40) if trend < 0 else (60, 90, 170)
    draw.polygon([*points, (points[-1][0], 240), (0, 240)], fill=color)
    draw.line(points, fill=(20, 20, 20), width=3)
    return _png(image)


def scene(kind: str | None, caption: str, seed: int = 0) -> bytes:
    """A flat drawing of a factory, bank, car, coin or wind farm, with a caption."""
    rng = random.Random(f"{kind}-{seed}")
    sky = (150 + rng.randint(0, 40), 190 + rng.randint(0, 30), 235)
    image = Image.new("RGB", SIZE, sky)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 180, 320, 240], fill=(110, 150, 90))
    if kind == "factory":
        draw.rectangle([60, 110, 250, 180], fill=(150, 70, 50))
        for x in (80, 140, 200):
            draw.rectangle([x, 60, x + 20, 110], fill=(120, 120, 120))
            draw.ellipse([x - 10, 30, x + 30, 60], fill=(200, 200, 200))
    elif kind == "bank":
        draw.polygon([(60, 90), (160, 40), (260, 90)], fill=(220, 220, 210))
        draw.rectangle([70, 90, 250, 180], fill=(235, 235, 225))
        for x in range(85, 250, 35):
            draw.rectangle([x, 100, x + 12, 175], fill=(190, 190, 180))
    elif kind == "car":
        draw.rounded_rectangle([60, 120, 260, 170], 15, fill=(40, 90, 200))
        draw.rounded_rectangle([100, 90, 220, 125], 12, fill=(60, 110, 220))
        for x in (95, 225):
            draw.ellipse([x - 20, 150, x + 20, 190], fill=(30, 30, 30))
    elif kind == "coin":
        draw.ellipse([100, 50, 220, 170], fill=(230, 180, 40), outline=(180, 130, 20), width=6)
        draw.text((150, 100), "B", fill=(120, 80, 10))
    elif kind == "wind":
        for x in (80, 170, 260):
            draw.line([(x, 180), (x, 80)], fill=(245, 245, 245), width=6)
            for dx, dy in ((0, -45), (40, 25), (-40, 25)):
                draw.line([(x, 80), (x + dx, 80 + dy)], fill=(250, 250, 250), width=4)
    draw.rectangle([0, 205, 320, 240], fill=(30, 30, 30))
    draw.text((10, 215), caption[:48], fill=(255, 255, 255))
    return _png(image)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
