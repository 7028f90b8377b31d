"""Monitor: scoring, trends, spike detection, alerts, scheduler."""
