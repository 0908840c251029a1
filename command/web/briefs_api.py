"""`GET /api/v1/briefs`: a period 情况报告 or an incident's 专报 / 续报 as a download.

`?period=day|week|month[&date=…]&format=html|md|pdf|docx` or `?incident=ID&format=…`, for the
county roles. The file is also kept under `<data dir>/reports/`. A GET that numbers a 续报 is a
read of the incident's state at that moment: asking twice with nothing new gives the same
number (flows.issue), so the request stays safe to repeat.
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint, Response, current_app, request

from command import green
from command.briefing import flows, render
from command.errors import DomainError, NotFound
from command.users.principal import COUNTY_ROLES
from command.web.auth import require
from command.web.respond import error_response, not_found

briefs_api = Blueprint("briefs_api", __name__)


@briefs_api.get("/api/v1/briefs")
@require(*COUNTY_ROLES)
def download(principal):
    core = current_app.extensions["cmdcenter"]
    args = request.args
    incident, period = args.get("incident"), args.get("period")
    try:
        if incident and period:
            raise DomainError("invalid_field", "give either period or incident, not both")
        # drawing charts and writing documents takes seconds of CPU in C and Python: on a
        # native thread under gevent, so the other connections are served meanwhile
        if incident:
            made = green.offload(partial(flows.make_incident, core, incident_id=incident,
                                         fmt=args.get("format"), by=principal.name))
        else:
            made = green.offload(partial(flows.make_period, core, kind=period,
                                         date=args.get("date"), fmt=args.get("format")))
    except NotFound as exc:
        return not_found(str(exc))
    except DomainError as err:
        return error_response(err)
    return _attachment(made)


def _attachment(made: flows.Made) -> Response:
    from urllib.parse import quote

    response = Response(made.content, mimetype=render.MIME[made.fmt].split(";")[0])
    response.headers["Content-Type"] = render.MIME[made.fmt]
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{made.path.name}\"; "
        f"filename*=UTF-8''{quote(made.download_name)}")
    response.headers["Cache-Control"] = "no-store"
    return response
