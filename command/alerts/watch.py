"""The risk watch: the alert rules run on arriving incidents, once per deployment.

A scheduler job (one holder of the deployment lock runs it) woken by every `incidents`
message on the bus and at least every `watch_seconds`:

1. read the incidents changed since its cursor (`seq` > cursor, in seq order — the same
   catch-up a screen does, so nothing is missed across restarts or a change of holder);
2. feed the new ones to the in-memory `alerts.stream.RuleStream` (outside any transaction),
   note the final ones (their severity and mass-gathering alerts end);
3. store the alerts raised, updated and resolved and the new cursor in one short write
   transaction; publish them after commit;
4. on a slower tick: feed silence, alerts whose situation ran out, pruning.

The stream is primed from the database when the job first runs, and again whenever the
stored cursor shows that another process ran the watch meanwhile.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from alerts import rules
from alerts.config import RulesConfig, load_config
from alerts.stream import DROPPED, FINAL, Raise, RuleStream
from command.alerts import service as alerts_service
from command.db import get_meta, last_seq, set_meta
from command.feeds.models import feeds
from command.incidents.models import incidents
from command.matters import numbers, related
from command.matters.categories import ROLE_LABELS, is_matter
from command.matters.models import matter_parties
from command.orders.service import Changes, Work
from layers.locate import Locator

log = logging.getLogger(__name__)

CURSOR = "riskwatch_cursor"
BATCH = 2000  # incidents per step
TICK = timedelta(seconds=15)  # feed silence and expiry at most this often
# Pruning walks the whole in-memory state (~0.1 s with 80k incidents in the horizon, holding
# the interpreter lock); the rules check their own windows, so it only bounds memory.
PRUNE = timedelta(minutes=10)
PASS_SECONDS = 0.5  # a backlog is drained over several passes, not one long hold
_GAPS = 200  # past deliveries per feed that prime its usual gap
STALE = timedelta(hours=1)  # rows received longer ago than this are not evaluated
# A live alert's routine update (same level, a higher count, one more report) is written and
# sent at most this often; a new alert, a change of level and a resolve go out at once. Under a
# storm (bench/rules.py: every cell alerting) this is what keeps the watch's writes and /live
# messages from growing with the arrival rate.
UPDATE_GAP = timedelta(seconds=10)

_COLUMNS = (incidents.c.id, incidents.c.seq, incidents.c.type, incidents.c.severity,
            incidents.c.people, incidents.c.occurred_at, incidents.c.received_at,
            incidents.c.lon, incidents.c.lat, incidents.c.township_code, incidents.c.grid_code,
            incidents.c.status, incidents.c.approximate, feeds.c.name.label("feed"))


def rules_config(settings) -> RulesConfig:
    """The rule thresholds: the defaults, overridden by the file `settings.alert_rules`."""
    return load_config(settings.alert_rules or None)


class RiskWatch:
    """The job (call it with `now`); state in memory, cursor and alerts in the database."""

    def __init__(self, core, cfg: RulesConfig | None = None, *,
                 update_gap: timedelta = UPDATE_GAP) -> None:
        self.core = core
        self.cfg = cfg or rules_config(core.settings)
        self.update_gap = update_gap
        self.stream: RuleStream | None = None
        self._written: dict[str, tuple[str, datetime]] = {}  # key → (level, when) last stored
        self._held: dict[str, Raise] = {}  # routine updates waiting for their gap
        self._cursor: int | None = None
        self._next_tick: datetime | None = None
        self._next_prune: datetime | None = None
        self._units: dict[str, dict] = {}
        self._locator: Locator | None = None

    def __call__(self, now: datetime) -> bool:
        """One pass; True when incidents are still waiting (the scheduler comes back soon)."""
        changes = Changes()
        started = time.monotonic()
        more = False
        while True:  # drain a backlog in batches, each its own short transaction
            step, more = self.step(now)
            changes.extend(step)
            if not more or time.monotonic() - started > PASS_SECONDS:
                break
        if self._next_tick is None or now >= self._next_tick:
            changes.extend(self.tick(now))
            self._next_tick = now + TICK
        if changes:
            try:
                changes.publish(self.core.bus)
            except Exception:  # committed already: screens catch up by seq
                log.exception("publishing risk-watch alerts failed")
        return more

    # --- arrivals -----------------------------------------------------------------------------

    def step(self, now: datetime) -> tuple[Changes, bool]:
        """Run the rules over the incidents changed since the cursor; (changes, more waiting)."""
        with self.core.read() as session:
            stored = _cursor(session)
            if self.stream is None or stored != self._cursor:
                self._prime(session, now, stored)
            cursor = self._cursor
            examined = last_seq(session)
            rows = session.execute(
                sa.select(*_COLUMNS).outerjoin(feeds, feeds.c.id == incidents.c.feed_id)
                .where(incidents.c.seq > cursor, incidents.c.seq <= examined)
                .order_by(incidents.c.seq).limit(BATCH)).all()
            locator = self.core.units.current(session)
        new_cursor = rows[-1].seq if len(rows) == BATCH else max(examined, cursor)
        if new_cursor == cursor:
            due = self._throttle({}, [], now)
            if due:
                return self._store(due, [], [], cursor, cursor, now), False
            return Changes(), False
        raises: dict[str, Raise] = {}
        resolves: list[str] = []
        finals: list[str] = []
        arrived_matters: list[dict] = []
        stream = self.stream
        for row in rows:
            event = self._event(row._mapping, locator)
            known = event["id"] in stream.events
            if row.status in FINAL:
                finals.append(event["id"])
            if known:
                if row.status in DROPPED:
                    stream.forget(event["id"])
                continue
            if event["feed"] is not None and stream.feed_seen(event["feed"],
                                                              event["received_at"]):
                resolves.append(f"feed_silence:{event['feed']}")
            # a row received long ago is history written in bulk (seed-history, an import):
            # it joins the baselines but is no news to alert on
            fresh = event["received_at"] > now - STALE
            if fresh and is_matter(event["type"]):
                arrived_matters.append(event)
            outcome = stream.add(event, now=now, evaluate=fresh)
            for r in outcome.raises:
                raises.pop(r.proposal.key, None)
                raises[r.proposal.key] = r  # the latest proposal of a situation wins
            resolves.extend(outcome.resolves)
        for r in stream.flush(now):
            raises.pop(r.proposal.key, None)
            raises[r.proposal.key] = r
        for r in self._repeat_parties(arrived_matters, now):
            raises[r.proposal.key] = r
        raises = self._throttle(raises, resolves, now)
        try:
            changes = self._store(raises, resolves, finals, cursor, new_cursor, now)
        except Exception:
            self.stream = None  # the stream took in what was not stored: start over from the DB
            raise
        return changes, len(rows) == BATCH

    def _repeat_parties(self, events: list[dict], now: datetime) -> list[Raise]:
        """repeat_party: a party of an arriving matter with ≥ count matters in the months."""
        if not events:
            return []
        out = []
        with self.core.read() as session:
            # one query for the arrivals with parties at all (a feed's complaints have none),
            # then the counts of those only
            with_parties = set(session.execute(
                sa.select(matter_parties.c.incident_id)
                .where(matter_parties.c.incident_id.in_([e["id"] for e in events]))
                .distinct()).scalars())
            if not with_parties:
                return []
            county = numbers.prefix(self.core.units.current(session))
            for e in events:
                if e["id"] not in with_parties:
                    continue
                for party in related.repeat_counts(session, e["id"], now=now,
                                                   months=self.cfg.repeat_party.months):
                    units = [county] + ([e["township"]["code"]] if e["township"] else [])
                    proposal = rules.repeat_party(
                        key=f"repeat_party:{party['key']}", count=party["count"],
                        who=related.shown_name(party["name"], party["kind"]),
                        role_label=ROLE_LABELS.get(party["role"], party["role"]),
                        cases=party["cases"], incidents=party["incidents"], units=units,
                        cfg=self.cfg)
                    if proposal is not None:
                        out.append(Raise(proposal, evidence=e["id"]))
        return out

    def _store(self, raises: dict[str, Raise], resolves: list[str], finals: list[str],
               cursor: int, new_cursor: int, now: datetime) -> Changes:
        with self.core.write() as session, session.begin():
            if _cursor(session) != cursor:  # another holder moved on meanwhile: its result wins
                self.stream = None
                return Changes()
            work = Work()
            for key in resolves:
                work.alert(alerts_service.stage_resolve(session, key, now))
            for alert_id in alerts_service.stage_raise_many(session, [
                    {"key": r.proposal.key, "rule": r.proposal.rule, "level": r.proposal.level,
                     "units": r.proposal.units, "incidents": r.proposal.incidents,
                     "message": r.proposal.message, "expires_at": r.expires_at,
                     "evidence": r.evidence} for r in raises.values()], now):
                work.alert(alert_id)
            if finals:
                for alert_id in _ended(session, finals, now):
                    work.alert(alert_id)
            set_meta(session, CURSOR, str(new_cursor))
            changes = work.finish(session, locator=self.core.units.current(session))
        self._cursor = new_cursor
        for key, r in raises.items():
            self._written[key] = (r.proposal.level, now)
        for key in resolves:
            self._written.pop(key, None)
        return changes

    def _throttle(self, raises: dict[str, Raise], resolves: list[str],
                  now: datetime) -> dict[str, Raise]:
        """The proposals to store now: new situations and changes of level at once, a live
        alert's routine update once its gap has passed (held until then; the latest wins)."""
        for key in resolves:
            self._held.pop(key, None)
        due: dict[str, Raise] = {}
        for key, r in raises.items():
            last = self._written.get(key)
            if last is not None and last[0] == r.proposal.level and now - last[1] < self.update_gap:
                self._held[key] = r
            else:
                self._held.pop(key, None)
                due[key] = r
        for key, r in list(self._held.items()):
            if now - self._written[key][1] >= self.update_gap:
                due[key] = self._held.pop(key)
        return due

    # --- the slow tick ------------------------------------------------------------------------

    def tick(self, now: datetime) -> Changes:
        """Feed silence, expired situations, pruning."""
        if self.stream is None:
            return Changes()
        if self._next_prune is None or now >= self._next_prune:
            self.stream.prune(now)
            self._next_prune = now + PRUNE
        with self.core.write() as session, session.begin():
            active = [r.name for r in session.execute(sa.select(feeds.c.name).where(
                feeds.c.revoked_at.is_(None), feeds.c.disabled_reason.is_(None)))]
            work = Work()
            silent = self.stream.silence(now, active)
            for p in silent:
                work.alert(alerts_service.stage_raise(
                    session, key=p.key, rule=p.rule, level=p.level, units=list(p.units),
                    incidents=[], message=p.message, now=now))
            quiet = {p.key for p in silent}
            for alert in alerts_service.live_by_rule(session, "feed_silence"):
                if alert["key"] not in quiet and alert["key"].split(":", 1)[1] not in active:
                    work.alert(alerts_service.stage_resolve(session, alert["key"], now))
            for alert_id in alerts_service.stage_expire(session, now):
                work.alert(alert_id)
            return work.finish(session, locator=self.core.units.current(session))

    # --- priming ------------------------------------------------------------------------------

    def _prime(self, session: Session, now: datetime, stored: int | None) -> None:
        started = time.perf_counter()
        if stored is None:
            stored = last_seq(session)  # first run: what is stored already is history, not news
        stream = RuleStream(self.cfg, started=now)
        locator = self.core.units.current(session)
        rows = session.execute(
            sa.select(*_COLUMNS).outerjoin(feeds, feeds.c.id == incidents.c.feed_id)
            .where(incidents.c.occurred_at > now - stream.horizon, incidents.c.seq <= stored)
            .order_by(incidents.c.occurred_at))
        count = 0
        for row in rows:
            stream.add(self._event(row._mapping, locator), now=now, evaluate=False)
            count += 1
        for alert in alerts_service.live_by_rule(session, "mass_gathering"):
            stream.restore_mass(alert["key"], alert["incidents"])
        for alert in alerts_service.live_by_rule(session, "repeat_place"):
            stream.restore_repeat(alert["key"], alert["incidents"])
        for feed_id, name in session.execute(sa.select(feeds.c.id, feeds.c.name)):
            times = session.execute(
                sa.select(incidents.c.received_at).where(incidents.c.feed_id == feed_id,
                                                         incidents.c.seq <= stored)
                .order_by(incidents.c.received_at.desc()).limit(_GAPS)).scalars().all()
            for at in reversed(times):
                stream.feed_seen(name, at)
        self.stream, self._cursor = stream, stored
        self._written.clear()  # what another holder stored meanwhile is not known here
        self._held.clear()
        if _cursor(session) is None:
            with self.core.write() as w, w.begin():
                if _cursor(w) is None:
                    set_meta(w, CURSOR, str(stored))
        log.info("risk watch primed with %d incidents in %.1f s", count,
                 time.perf_counter() - started)

    def _event(self, row, locator: Locator) -> dict:
        if locator is not self._locator:  # new boundaries: unit names may have changed
            self._units, self._locator = {}, locator
        # a position known only as "somewhere in this grid" takes no part in distance rules
        point = (None, None) if row["approximate"] else (row["lon"], row["lat"])
        return {
            "id": row["id"], "type": row["type"], "severity": row["severity"],
            "people": row["people"], "occurred_at": row["occurred_at"],
            "received_at": row["received_at"], "lon": point[0], "lat": point[1],
            "township": self._unit(locator, row["township_code"]),
            "grid": self._unit(locator, row["grid_code"]), "feed": row["feed"],
            "status": row["status"],
        }

    def _unit(self, locator: Locator, code: str | None) -> dict | None:
        if code is None:
            return None
        ref = self._units.get(code)
        if ref is None:
            try:
                name = locator.unit(code)["name"]
            except KeyError:
                name = code
            ref = self._units[code] = {"code": code, "name": name}
        return ref


def _cursor(session: Session) -> int | None:
    value = get_meta(session, CURSOR)
    return None if value is None else int(value)


def _ended(session: Session, final_ids: list[str], now: datetime) -> list[str]:
    """Resolve the alerts whose incidents are all over: a Ⅰ/Ⅱ级 incident's own alert, and a
    mass-gathering alert once every report in it is closed, merged or a false alarm."""
    changed = [alerts_service.stage_resolve(session, f"severity:{i}", now) for i in final_ids]
    finals = set(final_ids)
    for alert in alerts_service.live_by_rule(session, "mass_gathering"):
        members = set(alert["incidents"])
        if not members & finals:
            continue
        open_left = session.execute(sa.select(sa.func.count()).select_from(incidents).where(
            incidents.c.id.in_(members), incidents.c.status.not_in(FINAL))).scalar_one()
        if open_left == 0:
            changed.append(alerts_service.stage_resolve(session, alert["key"], now))
    return [c for c in changed if c is not None]
