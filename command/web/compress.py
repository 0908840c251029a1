"""Compressed responses: gzip for text, JSON, JavaScript and CSS (never images, which are).

flask-compress does the work in `after_request`. Dash's component bundles (plotly.js alone is
~4.6 MB) have fingerprinted URLs whose content never changes, so each is compressed once per
process and kept; every other response is compressed as it goes out. Socket.IO is outside
Flask: Engine.IO compresses its own long-polling responses, and websocket frames stay as they
are.
"""

from __future__ import annotations

from flask import Flask, Request
from flask_compress import Compress

BUNDLES = "/_dash-component-suites/"
MAX_KEPT = 64  # bundles kept compressed (a page uses a dozen)


class BundleCache:
    """flask-compress's cache, holding only fingerprinted bundles (the key says which)."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        """The compressed body of a bundle, if kept."""
        return self._data.get(key)

    def set(self, key: str, value: bytes) -> None:
        """Keep a bundle's compressed body (other responses have an empty key part)."""
        if not key.endswith(";") and len(self._data) < MAX_KEPT:
            self._data[key] = value


def _cache_key(request: Request) -> str:
    return request.full_path if request.path.startswith(BUNDLES) else ""


def install(server: Flask) -> None:
    """Compress the server's responses with gzip (level 6) when the client accepts it."""
    server.config.update(
        COMPRESS_ALGORITHM=["gzip"], COMPRESS_ALGORITHM_STREAMING=["gzip"], COMPRESS_LEVEL=6,
        COMPRESS_MIN_SIZE=500, COMPRESS_CACHE_BACKEND=BundleCache, COMPRESS_CACHE_KEY=_cache_key)
    Compress(server)
