"""The current unit tree of this process as a Locator, rebuilt when an import replaced it."""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session

from command.units import service
from layers.locate import Locator


class UnitRegistry:
    """Caches one Locator per units version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version: str | None = None
        self._locator: Locator | None = None

    def current(self, session: Session) -> Locator:
        """The Locator for the unit tree stored now (one small query to check the version)."""
        version = service.version(session)
        with self._lock:
            if self._locator is None or version != self._version:
                self._locator = Locator(service.load_gdf(session))
                self._version = version
            return self._locator
