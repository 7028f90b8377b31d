"""The HTTP API (FastAPI): `simmim serve`."""
