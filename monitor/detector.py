"""Spike detection on one dense series: pure arithmetic, no database.

For every bucket the baseline and spread come from the ``window`` buckets before it
(rolling median, and the interquartile range / 1.349 as a robust standard deviation),
so a spike never raises its own baseline. A bucket *triggers* when it is far from the
baseline in z terms, unlikely under the baseline as a count (Poisson / binomial tail),
and busy enough to matter (``min_volume``). Turning triggers into alerts (confirmation
over consecutive buckets, cooldown) is the caller's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from monitor.models import RuleKind
from monitor.rules import RULE_KINDS, Direction
from monitor.trends import Metric, metric_values, share

MIN_SHARE_SPREAD = 0.05  # a negative share moving less than 5 points is not news
MIN_SENTIMENT_SPREAD = 0.05


@dataclass(frozen=True)
class DetectorParams:
    kind: RuleKind
    window: int = 24
    min_history: int = 12
    min_volume: int = 5
    z: float = 3.0
    p_value: float = 0.001


def evaluate(series: pd.DataFrame, params: DetectorParams) -> pd.DataFrame:
    """Per bucket of ``series`` (dense; columns volume, sentiment_sum, sentiment_sq,
    negative): value, baseline, spread, z, p, triggered. Buckets with less than
    ``min_history`` buckets before them never trigger."""
    volume = series["volume"].astype(float)
    past = {
        name: series[name].astype(float).shift(1).rolling(params.window, min_periods=1)
        for name in ("volume", "sentiment_sum", "sentiment_sq", "negative")
    }
    history = pd.Series(np.arange(len(series)), index=series.index).clip(upper=params.window)
    enough = history >= params.min_history
    spec = RULE_KINDS[params.kind]
    metric, direction = spec.metric, spec.direction
    value = metric_values(series, metric)

    if metric is Metric.VOLUME:
        baseline = past["volume"].median()
        iqr = past["volume"].quantile(0.75) - past["volume"].quantile(0.25)
        mean = past["volume"].mean()
        # Counts are at least Poisson-noisy: sqrt(mean) bounds the spread from below.
        spread = np.maximum(iqr / 1.349, np.sqrt(np.maximum(mean, 1.0)))
        lam = np.maximum(mean.to_numpy(), 0.1)
        if direction is Direction.UP:
            z = (value - baseline) / spread
            # The rate is itself estimated from `window` buckets: test against its upper
            # bound (mean + 2 standard errors), or noise alone passes p more often than p.
            lam_high = lam + 2 * np.sqrt(lam / params.window)
            p = stats.poisson.sf(value.to_numpy() - 1, lam_high)  # P(X >= value)
            busy = value >= params.min_volume
        else:
            z = (baseline - value) / spread
            p = stats.poisson.cdf(value.to_numpy(), lam)  # P(X <= value)
            busy = (mean >= params.min_volume) & (value == 0)
    elif metric is Metric.NEGATIVE_SHARE and direction is Direction.UP:
        n = volume
        p0 = share(past["negative"].sum(), past["volume"].sum()).clip(0.01, 0.99)
        baseline = p0
        spread = np.maximum(np.sqrt(p0 * (1 - p0) / n.where(n > 0)), MIN_SHARE_SPREAD)
        z = (value - p0) / spread
        p = stats.binom.sf(series["negative"].to_numpy() - 1, n.to_numpy(), p0.fillna(0.5))
        busy = n >= params.min_volume
    elif metric is Metric.MEAN_SENTIMENT and direction is Direction.DOWN:
        n = volume
        base_mean = share(past["sentiment_sum"].sum(), past["volume"].sum())
        base_var = share(past["sentiment_sq"].sum(), past["volume"].sum()) - base_mean**2
        baseline = base_mean
        spread = np.maximum(np.sqrt(base_var.clip(lower=0) / n.where(n > 0)), MIN_SENTIMENT_SPREAD)
        z = (base_mean - value) / spread
        p = stats.norm.sf(z.fillna(0).to_numpy())
        busy = n >= params.min_volume
    else:  # pragma: no cover - RULE_KINDS pairs only the combinations above
        raise ValueError(f"no detector for {metric} {direction} (rule kind {params.kind})")

    z = pd.Series(np.asarray(z, float), index=series.index).fillna(0.0)
    p = pd.Series(np.asarray(p, float), index=series.index).fillna(1.0)
    triggered = enough & busy & (z >= params.z) & (p <= params.p_value)
    return pd.DataFrame(
        {
            "value": np.asarray(value, float),
            "baseline": np.asarray(baseline, float),
            "spread": np.asarray(spread, float),
            "z": z,
            "p": p,
            "volume": series["volume"].to_numpy(),
            "triggered": triggered.to_numpy(),
        },
        index=series.index,
    )
