"""REST for the grid worker's phone: reports from the field, their photos, "my reports"; the
window's scans of a matter; reading photos.

- `POST /api/v1/field/reports`: a `grid` or `township` user's token or session; the body and the
  answers of `POST /api/v1/reports` (one report or a list of up to 1,000; `(user, id)` is
  idempotent like `(feed, id)`). Another role: 403; no user (or a feed token): 401.
- `GET /api/v1/field/reports?limit=`: the user's own reports, newest first, with where the
  center has got with each.
- `PUT|HEAD /api/v1/field/reports/{id}/photos/{sha256}` and
  `PUT|HEAD /api/v1/matters/{case_no}/photos/{sha256}`: the resumable photo protocol
  (command.photos.service).
- `GET /api/v1/photos/{sha256}[?thumb=1]`: a photo, for whoever may see one of its incidents.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from command.errors import DomainError, Forbidden, NotFound
from command.incidents import loop
from command.incidents.service import Source
from command.photos import service as photos
from command.web.auth import bearer_token, current, require
from command.web.respond import error_response, json_response, not_found, read_json

field_api = Blueprint("field_api", __name__)
REPORTERS = ("grid", "township")


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


def _reporter():
    """The signed-in grid or township user, or the refusal to answer."""
    principal = current()
    if principal is None:
        return None, error_response(DomainError(
            "unauthorized", "sign in, or send Authorization: Bearer <your user token>"
            + (" (a feed token belongs on POST /api/v1/reports)" if bearer_token() else "")))
    if principal.role not in REPORTERS:
        return None, error_response(DomainError(
            "forbidden", f"role {principal.role!r} does not report from the field"))
    return principal, None


@field_api.post("/api/v1/field/reports")
def post_field_reports():
    principal, refused = _reporter()
    if refused is not None:
        return refused
    c = core()
    try:
        body = read_json()
        outcomes = c.ingest.submit(Source(user=principal.name), body)
    except DomainError as err:
        return error_response(err)
    if isinstance(body, list):
        return json_response([o.as_ack() for o in outcomes])
    outcome = outcomes[0]
    return json_response(outcome.as_ack(), outcome.error.http_status if outcome.error else 200)


@field_api.get("/api/v1/field/reports")
@require()
def my_reports(principal):
    from command.incidents.service import mine

    try:
        limit = int(request.args.get("limit", 200))
    except ValueError:
        return error_response(DomainError("invalid_field", "limit: a number", "limit"))
    if not 1 <= limit <= 1000:
        return error_response(DomainError("out_of_range", "limit: 1 to 1000", "limit"))
    c = core()
    with c.read() as session:
        return json_response({"items": mine(session, principal.name, limit=limit,
                                            locator=c.units.current(session))})


def _photo(subject_of, sha256: str, *, owner: str, attach):
    """The photo protocol for one subject: HEAD tells what is held, PUT adds a piece."""
    c = core()
    try:
        photos.check_sha(sha256)
        subject = subject_of()
        if request.method == "HEAD":
            with c.read() as session:
                held = photos.status(session, owner=owner, subject=subject, sha256=sha256)
            return _held(held)
        data = request.get_data(cache=False)
        with c.write() as session, session.begin():
            held = photos.receive(session, owner=owner, subject=subject, sha256=sha256,
                                  content_range=request.headers.get("Content-Range"), data=data,
                                  now=c.clock.now(),
                                  attach=lambda s, sha: attach(s, sha, c))
            changed = loop.stamp(session, held.changed or [],
                                 locator=c.units.current(session)) if held.changed else []
    except NotFound as exc:
        return not_found(str(exc))
    except DomainError as err:
        return error_response(err)
    if changed:
        c.bus.publish("incidents", changed)
    return _held(held)


def _held(held: photos.Held) -> Response:
    if held.complete:
        return Response(status=201)
    response = Response(status=308)
    if held.received:
        response.headers["Range"] = f"bytes=0-{held.received - 1}"
    return response


@field_api.route("/api/v1/field/reports/<report_id>/photos/<sha256>", methods=["PUT", "HEAD"])
def report_photo(report_id, sha256):
    principal, refused = _reporter()
    if refused is not None:
        return refused
    from command.incidents.service import by_user_source

    def attach(session, sha, c):
        incident_id = by_user_source(session, principal.name, report_id)
        if incident_id is None:
            return []  # the report has not arrived yet: attached when it comes
        new = photos.attach_to_incident(session, incident_id, sha, by=principal.name,
                                        now=c.clock.now())
        return [incident_id] if new else []

    def subject():
        if not 1 <= len(report_id) <= 128:
            raise DomainError("invalid_field", "the report id has 1 to 128 characters", "id")
        return f"report:{report_id}"
    return _photo(subject, sha256, owner=principal.name, attach=attach)


@field_api.route("/api/v1/matters/<case_no>/photos/<sha256>", methods=["PUT", "HEAD"])
@require("desk", "duty", "township")
def matter_photo(principal, case_no, sha256):
    from command.matters import service as matters

    c = core()
    with c.read() as session:
        try:
            record = matters.record(session, case_no, by=principal,
                                    locator=c.units.current(session), now=c.clock.now(),
                                    rules=c.matter_rules)
        except NotFound as exc:
            return not_found(str(exc))
        except Forbidden as err:
            return error_response(err)

    def attach(session, sha, c):
        new = photos.attach_to_incident(session, record["id"], sha, by=principal.name,
                                        now=c.clock.now())
        return [record["id"]] if new else []
    return _photo(lambda: f"matter:{case_no}", sha256, owner=principal.name, attach=attach)


@field_api.get("/api/v1/photos/<sha256>")
@require()
def read_photo(principal, sha256):
    c = core()
    with c.read() as session:
        rows = photos.incidents_with(session, sha256)
        ordered = {r.id: loop.ordered_units(session, r.id) for r in rows}
        if not any(principal.sees_incident(r.township_code, r.grid_code, ordered[r.id],
                                           type_code=r.type, reporter=r.reporter_user)
                   for r in rows):
            return not_found(f"no photo {sha256}")  # outside the reader's scope, or none
        found = photos.read(session, sha256, thumb=request.args.get("thumb") == "1")
    if found is None or not found[0]:
        return not_found(f"no photo {sha256}")
    data, mime = found
    response = Response(data, mimetype=mime)
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
