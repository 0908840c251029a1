"""REST for the one window: register, list, search, read, correct, close and reveal matters;
the audit trail.

Handlers unpack, run one service call in a transaction, publish what changed after commit and
map domain errors to statuses (403 scope, 404, 409, 422, 503 without the key). ID numbers travel
only in request bodies (search is a POST), never in a URL.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, request
from sqlalchemy.exc import IntegrityError

from command.errors import DomainError, NotFound
from command.matters import service
from command.matters.categories import normalise_category, normalise_channel
from command.web.api import seq_and_limit
from command.web.auth import require
from command.web.respond import error_response, json_response, not_found, read_object

matters_api = Blueprint("matters_api", __name__)


def core():
    """The Core of the running app."""
    return current_app.extensions["cmdcenter"]


def _run(action, *, write: bool = True):
    """Run `action(session, core, locator)`; commit, publish the Changes it returns, answer."""
    c = core()
    try:
        sessions = c.write if write else c.read
        with sessions() as session:
            with session.begin():
                result = action(session, c, c.units.current(session))
    except NotFound as exc:
        return not_found(str(exc))
    except DomainError as err:
        return error_response(err)
    body, changes = result if isinstance(result, tuple) else (result, None)
    if changes:
        changes.publish(c.bus)
    return json_response(body)


@matters_api.post("/api/v1/matters")
@require(*service.REGISTRARS)
def register(principal):
    key = request.headers.get("Idempotency-Key")

    def run(session, c, locator):
        return service.register(session, read_object(), by=principal, keyring=c.keyring,
                                locator=locator, now=c.clock.now(), idempotency_key=key,
                                max_future=timedelta(seconds=c.settings.future_tolerance_seconds),
                                rules=c.matter_rules)
    try:
        return _run(run)
    except IntegrityError:
        if not key:
            raise
        return _run(run)  # the same key twice at once: the second answers with the first's record


@matters_api.get("/api/v1/matters")
@require()
def listing(principal):
    args = request.args
    try:
        since, limit = seq_and_limit()
        category = args.get("category")
        if category is not None:
            category = normalise_category(category) or _bad("category", category)
        channel = args.get("channel")
        if channel is not None:
            channel = normalise_channel(channel) or _bad("channel", channel)
    except DomainError as err:
        return error_response(err)
    return _run(lambda session, c, locator: service.listing(
        session, by=principal, locator=locator, since=since, limit=limit,
        status=args.get("status") or None, category=category, channel=channel,
        township=args.get("township") or None), write=False)


def _bad(name: str, value: str):
    raise DomainError("invalid_field", f"{name}: unknown value {value!r}", name)


@matters_api.get("/api/v1/matters/worklist")
@require()
def worklist(principal):
    return _run(lambda session, c, locator: service.worklist(
        session, by=principal, locator=locator, now=c.clock.now(), rules=c.matter_rules),
        write=False)


@matters_api.post("/api/v1/matters/search")
@require()
def search(principal):
    return _run(lambda session, c, locator: service.search(
        session, read_object(), by=principal, keyring=c.keyring, locator=locator), write=False)


@matters_api.get("/api/v1/matters/<case_no>")
@require()
def detail(principal, case_no):
    return _run(lambda session, c, locator: service.record(
        session, case_no, by=principal, locator=locator, now=c.clock.now(),
        rules=c.matter_rules), write=False)


@matters_api.patch("/api/v1/matters/<case_no>")
@require(*service.CORRECTORS)
def correct(principal, case_no):
    return _run(lambda session, c, locator: service.correct(
        session, case_no, read_object(), by=principal, keyring=c.keyring, locator=locator,
        now=c.clock.now(), rules=c.matter_rules))


@matters_api.post("/api/v1/matters/<case_no>/close")
@require(*service.CLOSERS)
def close(principal, case_no):
    return _run(lambda session, c, locator: service.close(
        session, case_no, read_object(), by=principal, locator=locator, now=c.clock.now()))


@matters_api.post("/api/v1/matters/<case_no>/reveal")
@require()
def reveal(principal, case_no):
    return _run(lambda session, c, locator: service.reveal(
        session, case_no, read_object(), by=principal, keyring=c.keyring, now=c.clock.now()))


_STEPS = {"route": "route", "sessions": "add_session", "outcome": "outcome",
          "confirmation": "confirm", "followup": "followup", "extend": "extend",
          "reopen": "reopen"}


@matters_api.post("/api/v1/matters/<case_no>/<step>")
@require()
def step(principal, case_no, step):
    """route, sessions, outcome, confirmation, followup, extend, reopen: the matter's record."""
    from command.matters import handling

    name = _STEPS.get(step)
    if name is None:
        return not_found(f"no matter step {step!r} (one of: {', '.join(_STEPS)}, close, reveal)")
    return _run(lambda session, c, locator: getattr(handling, name)(
        session, case_no, read_object(), by=principal, locator=locator, now=c.clock.now(),
        rules=c.matter_rules))


@matters_api.get("/api/v1/matters/<case_no>/agreement")
@require()
def agreement(principal, case_no):
    """The 人民调解协议书 of an agreed matter (Word)."""
    from urllib.parse import quote

    from flask import Response

    from command.matters import agreement as agreement_doc

    c = core()
    try:
        with c.read() as session:
            locator = c.units.current(session)
            matter = service.record(session, case_no, by=principal, locator=locator,
                                    now=c.clock.now(), rules=c.matter_rules)
            content = agreement_doc.document(session, matter, keyring=c.keyring)
    except NotFound as exc:
        return not_found(str(exc))
    except DomainError as err:
        return error_response(err)
    response = Response(content, mimetype="application/vnd.openxmlformats-officedocument."
                                          "wordprocessingml.document")
    filename = f"人民调解协议书-{case_no}.docx"
    response.headers["Content-Disposition"] = (f"attachment; filename=\"agreement-{case_no}.docx\"; "
                                               f"filename*=UTF-8''{quote(filename)}")
    response.headers["Cache-Control"] = "no-store"
    return response


@matters_api.get("/api/v1/audit")
@require("admin")
def audit_trail(principal):
    subject = request.args.get("subject")
    if not subject:
        return error_response(DomainError("missing_field", "subject: a case number", "subject"))
    return _run(lambda session, c, locator: service.audit_trail(session, subject), write=False)
