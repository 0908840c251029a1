"""The app factory: one Flask server carrying Dash, the REST API and Socket.IO."""

from __future__ import annotations

import importlib
import logging
import secrets
from pathlib import Path

import dash
from flask import Flask
from flask.ctx import RequestContext

from command.config import Settings
from command.core import Core
from command.db import get_meta, set_meta
from command import payload
from command.web import api, auth, command_api, compress, reqlog, respond, sockets
from command.ops.health import MetricsAccess, Readiness
from command.web.briefs_api import briefs_api
from command.web.field_api import field_api
from command.web.phone import phone
from command.web.matters_api import matters_api
from command.web.receipt import receipt
from command.web.ops_api import ops_api
from command.web.risk_api import risk_api
from command.web.stats_api import stats_api

log = logging.getLogger(__name__)

PAGES = ("command.web.pages.wall", "command.web.pages.command", "command.web.pages.township",
         "command.web.pages.desk")  # the phone's /grid is a page of its own (command.web.phone)


class _EventContext(RequestContext):
    """The request context of a Socket.IO event after the connection's first: the URL match is
    the connection's (same environ every time), remembered instead of matched against every
    Dash route again."""

    def match_request(self) -> None:
        environ = self.request.environ
        known = environ.get(_URL_MATCH)
        if known is None:
            super().match_request()
            environ[_URL_MATCH] = (self.request.url_rule, self.request.view_args,
                                   self.request.routing_exception)
        else:
            self.request.url_rule, self.request.view_args, self.request.routing_exception = known


_URL_MATCH = "cmdcenter.url_match"


class Server(Flask):
    """Flask, with a cheaper context for Socket.IO events.

    Flask-SocketIO pushes a request context per event on the connection's environ; after the
    first event that environ keeps the connection's session copy (`saved_session`), which is
    handed over here instead of decoding the session cookie again, and the URL match is reused.
    Plain HTTP requests get a fresh environ each time and go the usual way.
    """

    def request_context(self, environ) -> RequestContext:
        saved = environ.get("saved_session")
        if saved is None:
            return super().request_context(environ)
        return _EventContext(self, environ, session=saved)


def assets_folder() -> str:
    """The assets folder: shipped inside the package, or the checkout's top-level `assets/`."""
    packaged = Path(__file__).resolve().parents[1] / "assets"
    if packaged.is_dir():
        return str(packaged)
    return str(Path(__file__).resolve().parents[2] / "assets")


def create_app(settings: Settings, *, core: Core | None = None, start_background: bool = True,
               async_mode: str = "threading") -> tuple[dash.Dash, Core]:
    """Build the Dash app (with REST and Socket.IO on its Flask server) around a Core.

    `async_mode` is Flask-SocketIO's: "gevent" under the production server (`serve`), plain
    threads for the app used in-process (tests, tools).
    """
    core = core or Core(settings)
    server = Server("cmdcenter")
    server.extensions["cmdcenter"] = core
    auth.init_app(server, secret_key=settings.secret_key or _stored_secret(core),
                  session_days=settings.session_days)
    respond.install(server, max_bytes=settings.max_message_bytes)
    reqlog.install(server)  # after respond: its hook goes first, so every answer has an id
    compress.install(server)
    server.register_blueprint(api.api)
    server.register_blueprint(command_api.command_api)
    server.register_blueprint(briefs_api)
    server.register_blueprint(risk_api)
    server.register_blueprint(stats_api)
    server.register_blueprint(matters_api)
    server.register_blueprint(field_api)
    server.register_blueprint(phone)
    server.register_blueprint(receipt)
    server.register_blueprint(ops_api)
    server.extensions["cmdcenter.readiness"] = Readiness(core.engine, settings.redis_url)
    server.extensions["cmdcenter.metrics_access"] = MetricsAccess(settings.metrics_token,
                                                                  settings.metrics_allow)

    app = dash.Dash(
        "cmdcenter", server=server, use_pages=True, pages_folder="",
        assets_folder=assets_folder(), title="县级社会治理指挥中心", update_title=None,
        serve_locally=True, compress=False,
    )
    app.config.suppress_callback_exceptions = False
    for module in PAGES:
        importlib.import_module(module)
    app.layout = dash.html.Div(dash.page_container, className="app-root")
    respond.guard_dash_callbacks(app)

    engineio_limit = max(settings.max_message_bytes * 2, settings.max_message_bytes + (1 << 20))
    sockets.socketio.init_app(
        server, async_mode=async_mode, path="socket.io", max_http_buffer_size=engineio_limit,
        ping_interval=settings.ping_seconds, ping_timeout=2 * settings.ping_seconds,
        json=payload.StrictJSON)
    sockets.install_guard(sockets.socketio, settings.max_message_bytes)
    sockets.mark_sids(sockets.socketio, settings.node)
    sockets.register(sockets.socketio)
    sockets.subscribe(sockets.socketio, core.bus, settings.live_flush_ms / 1000,
                      parent_of=lambda code: _parent(core, code),
                      ordered_units=lambda ids: _ordered_units(core, ids),
                      matter_ids=lambda ids: _matter_ids(core, ids),
                      on_incidents_sent=core.metrics.delivered)
    core.metrics.bind(
        connected=lambda: sockets.connected_counts(sockets.socketio),
        queue_depth=core.ingest_queue_depth,
        pool_in_use=lambda: getattr(core.engine.pool, "checkedout", lambda: 0)(),
        lock_held=lambda: bool(core.scheduler is not None and core.scheduler.held))
    if start_background:
        run_background(core, settings)
    return app, core


def run_background(core: Core, settings: Settings) -> None:
    """Start the deployment's background jobs: supervision, the legal clocks, the gauges, the
    risk watch (the demo starts them once its history is written, so none sees it half done)."""
    from command.matters import clock
    from command.ops import metrics
    from command.orders import supervision
    from command.scheduler import Scheduler

    # the deployment-wide gauges ride on supervision's lock: one process computes them
    core.scheduler = Scheduler(
        core, [supervision.make_job(core, core.limits),
               clock.make_job(core, core.matter_rules),
               metrics.make_job(core, core.metrics, settings.supervision_seconds)],
        interval=settings.supervision_seconds, name="supervision")
    core.scheduler.start()
    core.start_watch()


def _ordered_units(core: Core, incident_ids: list[str]) -> dict[str, tuple[str, ...]]:
    from command.orders.service import units_with_orders

    with core.read() as session:
        return units_with_orders(session, incident_ids)


def _matter_ids(core: Core, incident_ids: list[str]) -> set[str]:
    from command.matters.service import matter_ids

    with core.read() as session:
        return matter_ids(session, incident_ids)


def _parent(core: Core, code: str) -> str | None:
    locator = core.locator()
    return locator.unit(code)["parent"] if locator.has(code) else None


def _stored_secret(core: Core) -> str:
    """The session-signing key kept in the database: sessions survive restarts, any process."""
    import sqlalchemy.exc

    for _attempt in range(3):
        try:
            with core.write() as session, session.begin():
                key = get_meta(session, "secret_key")
                if key is None:
                    key = secrets.token_hex(32)
                    set_meta(session, "secret_key", key)
            return key
        except sqlalchemy.exc.IntegrityError:  # another process stored one a moment ago: use it
            continue
    raise RuntimeError("could not store the session key")


def serve(app: dash.Dash, settings: Settings, core: Core, *,
          before_close: list | None = None) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (command.web.server)."""
    from command import green
    from command.web.server import GeventServer

    if not green.active():
        raise RuntimeError("serve() needs gevent's monkey patching, done by `cmdcenter serve` "
                           "before anything else is imported (command.green)")
    GeventServer(app.server, settings.host, settings.port, socketio=sockets.socketio,
                 before_close=before_close,
                 drain=lambda timeout: sockets.drain(core, timeout)).serve_forever()
