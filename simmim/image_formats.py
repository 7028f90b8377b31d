"""Which picture formats may be decoded: a short allow-list, never the ones Pillow hands to
another program. Apart from ``images`` so settings can name it without importing Pillow."""

from __future__ import annotations

# Pillow's names (JPEG covers a phone camera's MPO). Pillow opens dozens of formats, and
# some run an external program on the file (EPS and PS: Ghostscript, a long CVE record).
SAFE_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
NEVER_OPENED: frozenset[str] = frozenset({"EPS", "PS", "PDF"})
