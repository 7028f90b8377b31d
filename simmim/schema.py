"""The whole schema: importing this module registers every part's tables on Base.metadata."""

from __future__ import annotations

from monitor import models as monitor_models  # noqa: F401
from simmim import models  # noqa: F401  (core tables)
from simmim.db import Base

metadata = Base.metadata
