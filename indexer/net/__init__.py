"""Fetching from the outside world: safe, polite, bounded."""
