"""The detector on seeded synthetic series: injected spikes found, noise left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor.detector import DetectorParams, evaluate
from monitor.models import RuleKind


def _series(
    volume: np.ndarray, negative: np.ndarray | None = None, sentiment: np.ndarray | None = None
) -> pd.DataFrame:
    sent = sentiment if sentiment is not None else np.zeros(len(volume))
    return pd.DataFrame(
        {
            "volume": volume,
            "sentiment_sum": sent * volume,
            "sentiment_sq": sent**2 * volume,
            "negative": negative if negative is not None else np.zeros(len(volume), int),
        }
    )


def _precision_recall(kind: RuleKind, make, n_series: int = 60) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2026)
    params = DetectorParams(
        kind=kind, window=24, min_history=12, min_volume=5, z=3.0, p_value=0.001
    )
    tp = fp = fn = 0
    for _ in range(n_series):
        frame, spikes = make(rng)
        found = set(np.flatnonzero(evaluate(frame, params)["triggered"].to_numpy()))
        tp += len(found & spikes)
        fp += len(found - spikes)
        fn += len(spikes - found)
    return tp / max(1, tp + fp), tp / max(1, tp + fn), tp


def test_volume_spikes_found_with_high_precision_and_recall() -> None:
    def make(rng):  # type: ignore[no-untyped-def]
        base = rng.uniform(5, 40)
        volume = rng.poisson(base, 200)
        spikes = set(rng.choice(np.arange(30, 200), size=3, replace=False).tolist())
        for s in spikes:
            volume[s] = int(base * rng.uniform(2.5, 5)) + 10
        return _series(volume), spikes

    precision, recall, tp = _precision_recall(RuleKind.VOLUME_SPIKE, make)
    assert tp >= 150
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_negative_share_spikes_found() -> None:
    def make(rng):  # type: ignore[no-untyped-def]
        volume = rng.poisson(30, 200) + 5
        p = rng.uniform(0.05, 0.2)
        negative = rng.binomial(volume, p)
        spikes = set(rng.choice(np.arange(30, 200), size=3, replace=False).tolist())
        for s in spikes:
            negative[s] = rng.binomial(volume[s], min(0.95, p + 0.5))
        return _series(volume, negative=negative), spikes

    precision, recall, _ = _precision_recall(RuleKind.NEGATIVE_SHARE, make)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_sentiment_drops_found() -> None:
    def make(rng):  # type: ignore[no-untyped-def]
        volume = rng.poisson(25, 200) + 5
        mean = rng.normal(0.1, 0.05, 200)
        spikes = set(rng.choice(np.arange(30, 200), size=3, replace=False).tolist())
        for s in spikes:
            mean[s] = -0.6
        # per-item spread 0.5 around the bucket mean: sum of squares = n (mean² + 0.25)
        frame = _series(volume, sentiment=mean)
        frame["sentiment_sq"] = volume * (mean**2 + 0.25)
        return frame, spikes

    precision, recall, _ = _precision_recall(RuleKind.SENTIMENT_DROP, make)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_pure_noise_raises_nothing() -> None:
    rng = np.random.default_rng(5)
    params = DetectorParams(kind=RuleKind.VOLUME_SPIKE, window=24, min_history=12, min_volume=5)
    triggered = sum(
        int(evaluate(_series(rng.poisson(rng.uniform(1, 50), 300)), params)["triggered"].sum())
        for _ in range(50)
    )
    # 15,000 noise buckets: the nominal p ≤ 0.001 allows 15; the detector must stay well under.
    assert triggered <= 5


def test_no_alert_below_minimum_volume() -> None:
    volume = np.zeros(60, int)
    volume[50] = 4  # from nothing to 4 is "infinitely" unusual, but too small to matter
    params = DetectorParams(kind=RuleKind.VOLUME_SPIKE, min_history=12, min_volume=5)
    assert not evaluate(_series(volume), params)["triggered"].any()
    volume[50] = 9
    assert evaluate(_series(volume), params)["triggered"].to_numpy()[50]


def test_needs_minimum_history() -> None:
    volume = np.array([1, 1, 1, 40] + [1] * 20)
    params = DetectorParams(kind=RuleKind.VOLUME_SPIKE, min_history=12, min_volume=5)
    assert not evaluate(_series(volume), params)["triggered"].any()


def test_source_silence() -> None:
    volume = np.array([8] * 30 + [0, 0])
    params = DetectorParams(
        kind=RuleKind.SOURCE_SILENT, min_history=7, min_volume=3, z=2.0, p_value=0.01
    )
    triggered = evaluate(_series(volume), params)["triggered"].to_numpy()
    assert triggered[30] and not triggered[:30].any()
