"""The grid worker's phone `/grid`: a small offline-first page of its own (not a Dash page).

- `GET /grid`: the app shell (static HTML: the service worker caches it, so the page opens with
  no network at all after one online sign-in).
- `GET /grid/config`: who is signed in, their unit with its outline (the small offline drawing
  the worker taps a place on), the labels; the page keeps the last answer for offline starts.
- `GET /grid/static/<file>`: the page's script, style and icons; `GET /grid-sw.js`: the service
  worker (scope `/grid`); `GET /grid/manifest.webmanifest`: installable.

Text files are sent gzip-compressed when the browser takes it. No Dash and no plotly on the
phone: the whole first load is a few tens of kB.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request

from command.db import last_seq
from command.incidents.types import TYPE_LABELS
from command.matters.categories import CATEGORY_LABELS, MATTER_TYPES
from command.orders.service import NODE_STATE_LABELS, PRIORITIES
from command.users.principal import ROLE_LABELS
from command.web.auth import current
from command.web.respond import error_response, json_response

phone = Blueprint("phone", __name__)
STATIC = Path(__file__).with_name("phone")
ASSETS = Path(__file__).resolve().parents[1] / "assets"  # the packaged copy, if any
SHARED = ("00_common.js", "alert_ticker.js", "alert_ticker.css", "socket.io.min.js")
PRIORITY_LABELS = {"urgent": "特急", "high": "紧急", "normal": "一般"}
REPORTERS = ("grid", "township")


def _shared_dir() -> Path:
    from command.web.app import assets_folder

    return Path(assets_folder())


@lru_cache(maxsize=64)
def _file(name: str) -> tuple[bytes, bytes, str]:
    """(bytes, gzip bytes, ETag) of a static file of the phone (or a shared asset)."""
    path = (_shared_dir() / name) if name in SHARED else (STATIC / name)
    if not path.is_file() or path.resolve().parent not in (STATIC.resolve(),
                                                            _shared_dir().resolve()):
        raise FileNotFoundError(name)
    data = path.read_bytes()
    return data, gzip.compress(data, 9, mtime=0), hashlib.sha256(data).hexdigest()[:16]


def version() -> str:
    """One version for the shell and every file it uses (the service worker's cache name)."""
    names = ["shell", "phone.js", "phone.css", *SHARED]
    digest = hashlib.sha256(SHELL.encode())
    for name in names[1:]:
        digest.update(_file(name)[2].encode())
    return digest.hexdigest()[:12]


def _send(data: bytes, packed: bytes, etag: str, mimetype: str, *, cache: str) -> Response:
    if request.if_none_match and etag in request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": cache})
    gz = "gzip" in (request.headers.get("Accept-Encoding") or "")
    response = Response(packed if gz else data, mimetype=mimetype)
    if gz:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.headers["ETag"] = f'"{etag}"'
    response.headers["Cache-Control"] = cache
    return response


SHELL = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="#122a4f">
<title>网格工作台</title>
<link rel="manifest" href="/grid/manifest.webmanifest">
<link rel="icon" href="/grid/static/icon-192.png">
<link rel="apple-touch-icon" href="/grid/static/icon-192.png">
<link rel="stylesheet" href="/grid/static/alert_ticker.css?v={v}">
<link rel="stylesheet" href="/grid/static/phone.css?v={v}">
</head><body class="ph-body">
<div class="cc-page cc-grid ph-app" id="phone-app">
<header class="ph-header">
  <div class="ph-title"><h1>网格工作台</h1><div class="ph-sub" id="grid-who">正在加载…</div></div>
  <div class="cc-live is-connecting" id="grid-status" role="status">连接中…</div>
</header>
<div id="grid-ticker-slot"></div>
<div class="cc-banner" id="grid-banner" role="alert"></div>
<div class="cc-toast" id="grid-message" role="status"></div>
<nav class="ph-tabs" role="tablist">
  <button type="button" role="tab" data-tab="orders" class="is-on">任务<span class="ph-badge" id="tab-orders-count"></span></button>
  <button type="button" role="tab" data-tab="report">上报</button>
  <button type="button" role="tab" data-tab="mine">我的上报<span class="ph-badge" id="tab-outbox-count"></span></button>
</nav>
<div class="ph-notice" id="grid-notice" hidden></div>
<main class="ph-main">
  <section class="ph-panel" data-panel="orders"><div id="grid-cards" class="cc-cards"></div></section>
  <section class="ph-panel" data-panel="report" hidden><form id="grid-report" class="ph-form" novalidate></form></section>
  <section class="ph-panel" data-panel="mine" hidden><div id="grid-mine"></div></section>
</main>
<footer class="ph-footer"><form method="post" action="/logout" id="grid-logout">
<input type="hidden" name="csrf_token" id="grid-csrf"><button type="submit" class="ph-link">退出登录</button></form></footer>
</div>
<script src="/grid/static/socket.io.min.js?v={v}"></script>
<script src="/grid/static/00_common.js?v={v}"></script>
<script src="/grid/static/alert_ticker.js?v={v}"></script>
<script src="/grid/static/phone.js?v={v}"></script>
</body></html>"""


@phone.get("/grid")
def shell():
    html = SHELL.replace("{v}", version()).encode()
    packed = gzip.compress(html, 9, mtime=0)
    return _send(html, packed, hashlib.sha256(html).hexdigest()[:16], "text/html",
                 cache="no-cache")


@phone.get("/grid/static/<path:name>")
def static(name):
    try:
        data, packed, etag = _file(name)
    except (FileNotFoundError, OSError):
        abort(404)
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if mimetype.startswith("image/png"):
        packed = data  # already compressed
    cache = "public, max-age=31536000, immutable" if request.args.get("v") else "no-cache"
    response = _send(data, packed, etag, mimetype, cache=cache)
    if mimetype == "image/png":
        response.headers.pop("Content-Encoding", None)
    return response


@phone.get("/grid-sw.js")
def service_worker():
    data, _packed, _etag = _file("sw.js")
    text = data.decode().replace("__VERSION__", version())
    body = text.encode()
    response = _send(body, gzip.compress(body, 9, mtime=0), hashlib.sha256(body).hexdigest()[:16],
                     "text/javascript", cache="no-cache")
    response.headers["Service-Worker-Allowed"] = "/grid"
    return response


@phone.get("/grid/manifest.webmanifest")
def manifest():
    body = json.dumps({
        "name": "网格工作台 · 社会治理综合指挥中心", "short_name": "网格工作台",
        "lang": "zh-CN", "start_url": "/grid", "scope": "/grid", "display": "standalone",
        "background_color": "#eef2f7", "theme_color": "#122a4f",
        "icons": [{"src": "/grid/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
                  {"src": "/grid/static/icon-512.png", "sizes": "512x512", "type": "image/png",
                   "purpose": "any maskable"}],
    }, ensure_ascii=False).encode()
    return _send(body, gzip.compress(body, 9, mtime=0), hashlib.sha256(body).hexdigest()[:16],
                 "application/manifest+json", cache="no-cache")


@phone.get("/grid/config")
def config():
    from command.units import service as units_service

    principal = current()
    if principal is None:
        from command.errors import DomainError

        return error_response(DomainError("unauthorized", "please sign in"))
    core = current_app.extensions["cmdcenter"]
    with core.read() as session:
        locator = core.units.current(session)
        unit = principal.unit_code
        outline = None
        if unit and locator.has(unit):
            gdf = units_service.load_gdf(session, levels=(locator.unit(unit)["level"],))
            shape = gdf[gdf["code"] == unit]
            if len(shape):
                outline = json.loads(shape.geometry.simplify(0.00005).to_json())["features"][0][
                    "geometry"]
        grids = [[u["code"], u["name"]] for u in units_service.get_all(session)
                 if u["level"] == "grid" and (u["code"] == unit or u["parent"] == unit)]
        alert_seq = last_seq(session, counter="alert_seq")
    body = {
        "me": {"name": principal.name, "role": principal.role,
               "role_label": ROLE_LABELS.get(principal.role, principal.role), "unit": unit,
               "unit_name": locator.unit(unit)["name"] if unit and locator.has(unit) else "",
               "reports": principal.role in REPORTERS},
        "outline": outline, "grids": grids,
        "types": [[c, label] for c, label in TYPE_LABELS.items()],
        "matter_types": list(MATTER_TYPES),
        "categories": [[c, label] for c, label in CATEGORY_LABELS.items()],
        "node_labels": NODE_STATE_LABELS,
        "priorities": [[c, PRIORITY_LABELS[c]] for c in PRIORITIES],
        "now": int(core.clock.now().timestamp() * 1000),
        "alert_seq": alert_seq,
        "max_photos": 9,
    }
    return json_response(body)
