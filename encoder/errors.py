from __future__ import annotations

from simmim.errors import SimmimError


class EncoderError(SimmimError):
    """The model, its weights, a checkpoint or an encoding input cannot be used."""
