"""Encoder: open_clip towers, batched encoding, Semantic Memory fusion."""
