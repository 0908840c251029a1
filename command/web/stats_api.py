"""REST for the center's figures and the matter list as downloads.

- GET /api/v1/stats/matters?from&to&by=dept|township|category|channel[&format=csv|xlsx]:
  the figures of a range of local days and of the same number of days before it
  (command.matters.stats), as JSON or as a table to download.
- GET /api/v1/matters/export?from&to&format=csv|xlsx[&category&channel&township]: the
  matters registered in the range, as the lists show them (no party data).

The figures are for the county-level roles (a township: its own township's matters; a
department: the matters it leads; others 403); the list is scoped like every matter list.
Bad parameters answer 422 in the error shape with the parameter as `field`.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, current_app, request

from command.errors import DomainError
from command.incidents.service import scope_filter
from command.matters import stats, tables
from command.matters.categories import normalise_category, normalise_channel
from command.web.auth import require
from command.web.respond import error_response, json_response

stats_api = Blueprint("stats_api", __name__)


def _download(content: bytes, fmt: str, filename: str) -> Response:
    response = Response(content, mimetype=tables.FORMATS[fmt].split(";")[0])
    response.headers["Content-Type"] = tables.FORMATS[fmt]
    ascii_name = "cmdcenter." + fmt
    response.headers["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}\"; "
                                               f"filename*=UTF-8''{quote(filename)}")
    response.headers["Cache-Control"] = "no-store"
    return response


@stats_api.get("/api/v1/stats/matters")
@require()
def matter_figures(principal):
    core = current_app.extensions["cmdcenter"]
    args = request.args
    try:
        fmt = tables.check_format(args.get("format"))
        with core.read() as session:
            fig = stats.for_principal(session, principal, start=args.get("from"),
                                      end=args.get("to"), by=args.get("by"),
                                      now=core.clock.now(), locator=core.units.current(session))
    except DomainError as err:
        return error_response(err)
    if fmt is None:
        return json_response(fig)
    headers, rows = tables.figures_table(fig)
    return _download(tables.render(fmt, "事项统计", headers, rows), fmt,
                     tables.figures_filename(fig, fmt))


@stats_api.get("/api/v1/matters/export")
@require()
def matter_list(principal):
    core = current_app.extensions["cmdcenter"]
    args = request.args
    try:
        fmt = tables.check_format(args.get("format")) or "csv"
        rng = stats.parse_range(args.get("from"), args.get("to"), now=core.clock.now())
        filters = {name: _known(name, args.get(name), normalise)
                   for name, normalise in (("category", normalise_category),
                                           ("channel", normalise_channel),
                                           ("township", None))}
        with core.read() as session:
            rows = tables.matter_list(session, rng, where=scope_filter(principal),
                                      locator=core.units.current(session), **filters)
    except DomainError as err:
        return error_response(err)
    return _download(tables.render(fmt, "事项清单", tables.LIST_HEADERS, rows), fmt,
                     tables.list_filename(rng, fmt))


def _known(name: str, value: str | None, normalise) -> str | None:
    if not value:
        return None
    if normalise is None:
        return value
    code = normalise(value)
    if code is None:
        raise DomainError("invalid_field", f"{name}: unknown value {value!r}", name)
    return code
