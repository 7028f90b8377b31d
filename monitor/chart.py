"""The PNG chart in an alert email: the series around the spike, the alert buckets marked."""

from __future__ import annotations

import io
from datetime import datetime

import matplotlib

matplotlib.use("Agg")  # headless: no display, no GUI toolkit

import matplotlib.dates as mdates
import matplotlib.pyplot as plt


def series_chart(
    starts: list[datetime],
    values: list[float],
    *,
    title: str,
    ylabel: str,
    highlight: tuple[datetime, datetime] | None = None,
    baseline: float | None = None,
) -> bytes:
    figure, axis = plt.subplots(figsize=(7, 2.8), dpi=100)
    try:
        x = mdates.date2num(starts)
        axis.plot(x, values, marker="o", markersize=3, linewidth=1.5, color="#1f5fa8")
        if baseline is not None:
            axis.axhline(baseline, color="#888888", linestyle="--", linewidth=1, label="usual")
            axis.legend(loc="upper left", fontsize=8, frameon=False)
        if highlight is not None:
            lo, hi = mdates.date2num(highlight[0]), mdates.date2num(highlight[1])
            axis.axvspan(float(lo), float(hi), color="#d62728", alpha=0.18)
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(ylabel, fontsize=9)
        axis.tick_params(labelsize=8)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        axis.grid(alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)
