"""The rules fed one arriving incident at a time: the history each rule needs, kept in memory.

`RuleStream` holds the incidents of the rules' horizon (the spike baseline's weeks, the
repeat-place days), indexed the way each rule looks them up, so that an arrival costs a few
dictionary lookups and a scan of its neighbourhood, never a scan of the history:

- mass gathering: a spatial hash of cells one radius wide (the 3 × 3 cells around an
  incident hold every report within the radius);
- repeat place: the disputes/petitions per grid, and a spatial hash for the radius;
- spike: the incident ids per township × type × window (the baseline is the same window
  1…weeks weeks back);
- feed silence: each feed's last report and its recent gaps.

No database and no clock here: the caller feeds incidents (`add`), status changes (`forget`)
and time (`prune`, `silence`), and stores what comes back.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from alerts import rules
from alerts.config import RulesConfig
from alerts.rules import AlertProposal, parse_time

FINAL = ("closed", "merged", "false_alarm")
DROPPED = ("merged", "false_alarm")  # no longer a report of its own: the rules forget it
_M_PER_DEG_LAT = 110_540.0
_M_PER_DEG_LON = 111_320.0
_SAME_BURST_S = 1.0  # reports received this close together are one delivery, not a gap
_GAPS_KEPT = 500
WEEK = timedelta(days=7)
MAX_LISTED = 500  # incidents named in one alert: the latest (its message gives the full count)


@dataclass(frozen=True)
class Raise:
    """A proposal to store, with when its situation ends by itself and the incident behind it."""

    proposal: AlertProposal
    expires_at: datetime | None = None
    evidence: str | None = None


@dataclass
class Outcome:
    """What one arrival changed: alerts to raise or update, and situation keys that ended."""

    raises: list[Raise]
    resolves: list[str]


def _capped(proposal: AlertProposal) -> AlertProposal:
    if len(proposal.incidents) <= MAX_LISTED:
        return proposal
    return replace(proposal, incidents=proposal.incidents[-MAX_LISTED:])


class _Hash:
    """Ids bucketed in square cells `size_m` wide (fixed degrees per cell, set by the first point)."""

    def __init__(self, size_m: float) -> None:
        self._size = size_m * 1.05  # a little wider than the radius: the 3 × 3 block covers it
        self._dlon = self._dlat = None
        self.cells: dict[tuple[int, int], list[str]] = {}

    def _cell(self, lon: float, lat: float) -> tuple[int, int]:
        if self._dlat is None:
            self._dlat = self._size / _M_PER_DEG_LAT
            self._dlon = self._size / (_M_PER_DEG_LON * max(math.cos(math.radians(lat)), 0.05))
        return int(math.floor(lon / self._dlon)), int(math.floor(lat / self._dlat))

    def add(self, incident_id: str, lon: float, lat: float) -> None:
        self.cells.setdefault(self._cell(lon, lat), []).append(incident_id)

    def near(self, lon: float, lat: float) -> Iterable[str]:
        ix, iy = self._cell(lon, lat)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                yield from self.cells.get((ix + dx, iy + dy), ())

    def keep(self, alive) -> None:
        for cell in list(self.cells):
            kept = [i for i in self.cells[cell] if alive(i)]
            if kept:
                self.cells[cell] = kept
            else:
                del self.cells[cell]


class RuleStream:
    """Incremental state of the rules `severity`, `mass_gathering`, `spike`, `repeat_place`
    and `feed_silence` (see `alerts.rules` for each rule itself)."""

    def __init__(self, cfg: RulesConfig, *, started: datetime) -> None:
        self.cfg = cfg
        self.started = parse_time(started)  # feeds are not judged silent for our own downtime
        sp, rp, mg = cfg.spike, cfg.repeat_place, cfg.mass_gathering
        self._window = timedelta(minutes=sp.window_minutes)
        self._span = timedelta(minutes=mg.minutes)
        self.horizon = max(sp.weeks * WEEK + 2 * self._window, timedelta(days=rp.days),
                           2 * self._span)
        self.events: dict[str, dict] = {}
        self._mass = _Hash(mg.radius_m)
        self._place = _Hash(rp.radius_m)
        self._by_grid: dict[str, list[str]] = {}
        self._cells: dict[tuple[str, str, datetime], list[str]] = {}
        self._mass_key: dict[str, str] = {}  # incident -> the mass alert key it belongs to
        self._mass_groups: dict[str, set[str]] = {}
        self._repeat_key: dict[str, str] = {}  # incident -> the repeat-place alert key it is in
        # situations touched since the last flush -> the latest incident that touched them
        self._dirty_mass: dict[str, str] = {}
        self._dirty_cells: dict[tuple[str, str, datetime], str] = {}
        self._dirty_places: dict[object, str] = {}
        self.last_seen: dict[str, datetime] = {}
        self.gaps: dict[str, deque[float]] = {}

    # --- arrivals -----------------------------------------------------------------------------

    def add(self, event: Mapping[str, Any], *, now: datetime, evaluate: bool = True) -> Outcome:
        """Take in one incident (the first time it is seen); evaluate the rules unless priming.

        Severity is proposed at once; the situations of the other rules that this arrival
        touches are marked and proposed by `flush` (call it after a batch of arrivals), so a
        burst of reports into one place costs one proposal per situation, not one per report.
        An incident that is already final is stored but raises nothing; one that is merged or
        a false alarm is not a report of its own and is left out altogether.
        """
        out = Outcome([], [])
        incident_id = str(event["id"])
        if incident_id in self.events or event.get("status") in DROPPED:
            return out
        e = dict(event)
        e["id"] = incident_id
        e["occurred_at"] = at = parse_time(e["occurred_at"])
        if at <= now - self.horizon:
            return out  # outside every rule's window
        self.events[incident_id] = e
        has_point = e.get("lon") is not None and e.get("lat") is not None
        repeat_type = e.get("type") in self.cfg.repeat_place.types
        grid = (e.get("grid") or {}).get("code")
        if repeat_type:
            if grid is not None:
                self._by_grid.setdefault(grid, []).append(incident_id)
            if has_point:
                self._place.add(incident_id, e["lon"], e["lat"])
        township = (e.get("township") or {}).get("code")
        cell = None
        if township is not None:
            cell = (township, e.get("type"), rules.window_end(at, self.cfg))
            self._cells.setdefault(cell, []).append(incident_id)
        if evaluate and e.get("status") not in FINAL:
            proposal = rules.severity(e, self.cfg)
            if proposal is not None:
                out.raises.append(Raise(proposal, None, incident_id))
            if has_point and at > now - self._span:
                self._add_mass(e)
            if cell is not None and cell[2] + self._window > now:
                self._dirty_cells[cell] = incident_id
            if repeat_type:
                by_grid = grid is not None and self.cfg.repeat_place.match != "radius"
                if by_grid:
                    place = grid
                elif has_point:  # one proposal per radius-wide cell touched, not per report
                    place = self._place._cell(e["lon"], e["lat"])
                else:
                    place = incident_id
                self._dirty_places[place] = incident_id
        if has_point and at > now - 2 * self._span:  # after the scan: not its own neighbour
            self._mass.add(incident_id, e["lon"], e["lat"])
        return out

    def flush(self, now: datetime) -> list[Raise]:
        """The proposals of every situation the arrivals since the last flush touched."""
        out: list[Raise] = []
        for key, evidence in self._dirty_mass.items():
            members = [self.events[i] for i in self._mass_groups.get(key, ()) if i in self.events]
            proposal = rules.mass_proposal(members, self.cfg, key=key) if members else None
            if proposal is not None:
                out.append(Raise(_capped(proposal), None, evidence))
        for cell, evidence in self._dirty_cells.items():
            r = self._spike_proposal(cell, evidence)
            if r is not None:
                out.append(r)
        for place, evidence in self._dirty_places.items():
            r = self._repeat_proposal(evidence, now)
            if r is not None:
                out.append(r)
        self._dirty_mass, self._dirty_cells, self._dirty_places = {}, {}, {}
        return out

    def _add_mass(self, e: dict) -> None:
        """Join the arrival to a gathering nearby, or start one when enough reports are close.

        Scans the neighbourhood newest first and stops at the first report that already
        belongs to a gathering (the arrival joins it) or once enough close reports are found,
        so a crowd of reports in one place costs each arrival a few comparisons, not the crowd.
        """
        mg = self.cfg.mass_gathering
        at = e["occurred_at"]
        close: list[str] = []
        joined = None
        for i in self._near_newest_first(e["lon"], e["lat"]):
            other = self.events.get(i)
            if other is None or abs(other["occurred_at"] - at) > self._span:
                continue
            if rules.haversine_m(e["lon"], e["lat"], other["lon"], other["lat"]) > mg.radius_m:
                continue
            joined = self._mass_key.get(i)
            if joined is not None:
                break
            close.append(i)
            if len(close) + 1 >= mg.reports:
                break
        if joined is not None:
            key, members = joined, [e["id"]]
        elif len(close) + 1 >= mg.reports:
            members = [*close, e["id"]]
            first = min(members, key=lambda i: (self.events[i]["occurred_at"], i))
            key = f"mass_gathering:{first}"
        elif int(e.get("people") or 0) >= mg.people:
            key, members = f"mass_gathering:{e['id']}", [e["id"]]
        else:
            return
        group = self._mass_groups.setdefault(key, set())
        group.update(members)
        for i in members:
            self._mass_key[i] = key
        self._dirty_mass[key] = e["id"]

    def _near_newest_first(self, lon: float, lat: float) -> Iterable[str]:
        ix, iy = self._mass._cell(lon, lat)
        lists = [self._mass.cells.get((ix + dx, iy + dy), ())
                 for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
        for ids in lists:
            yield from reversed(ids)

    def _spike_proposal(self, cell: tuple[str, str, datetime], evidence: str) -> Raise | None:
        sp = self.cfg.spike
        township, type_code, end = cell
        ids = self._cells.get(cell, [])
        if len(ids) < sp.min_count or evidence not in self.events:
            return None

        def counts(window_end: datetime) -> tuple[int, list[int]]:
            now_n = len(self._cells.get((township, type_code, window_end), ()))
            base = [len(self._cells.get((township, type_code, window_end - w * WEEK), ()))
                    for w in range(1, sp.weeks + 1)]
            return now_n, base

        count, baseline = counts(end)
        previous = [counts(end - k * self._window) for k in range(1, sp.trend_windows)]
        start = end - self._window
        local_end = end.astimezone(rules.CHINA)
        label = (f"{rules._hm(start)}–{rules._hm(end)}" if local_end.hour or local_end.minute
                 else f"{rules._hm(start)}–24:00")
        proposal = rules.spike(count, baseline, self.cfg,
                               township=self.events[evidence]["township"],
                               type_label=type_code, window_label=label, previous=previous,
                               incidents=ids[-MAX_LISTED:])
        return None if proposal is None else Raise(proposal, end + self._window, evidence)

    def _repeat_proposal(self, evidence: str, now: datetime) -> Raise | None:
        rp = self.cfg.repeat_place
        e = self.events.get(evidence)
        if e is None:
            return None
        grid = (e.get("grid") or {}).get("code")
        match = self.cfg.repeat_place.match
        ids = set(self._by_grid.get(grid, ())) if grid is not None and match != "radius" \
            else set()
        if match != "grid" and e.get("lon") is not None and e.get("lat") is not None:
            ids.update(self._place.near(e["lon"], e["lat"]))
        ids.discard(e["id"])
        history = [self.events[i] for i in ids if i in self.events]
        proposal = rules.repeat_place(e, history, self.cfg)
        if proposal is None:
            return None
        if not proposal.key.startswith("repeat_place:grid:"):
            # one spot, one alert: reuse the key a report of this group already carries, so
            # the alert does not change its key as its earliest report leaves the window
            known = sorted({self._repeat_key[i] for i in proposal.incidents
                            if i in self._repeat_key})
            key = known[0] if known else proposal.key
            proposal = replace(proposal, key=key)
            for i in proposal.incidents:
                self._repeat_key.setdefault(i, key)
        # the situation lasts while `count` of its incidents stay within the last `days`
        times = sorted(self.events[i]["occurred_at"] for i in proposal.incidents
                       if i in self.events)
        expires = times[-rp.count] + timedelta(days=rp.days)
        if expires <= now:
            return None
        return Raise(_capped(proposal), expires, evidence)

    # --- feeds --------------------------------------------------------------------------------

    def feed_seen(self, feed: str, received_at: datetime | str) -> bool:
        """Note a report from `feed`; True when the feed had been silent before (now it is not)."""
        at = parse_time(received_at)
        last = self.last_seen.get(feed)
        if last is not None and at <= last:
            return False
        if last is not None and (at - last).total_seconds() >= _SAME_BURST_S:
            self.gaps.setdefault(feed, deque(maxlen=_GAPS_KEPT)).append(
                (at - last).total_seconds())
        self.last_seen[feed] = at
        return True

    def silence(self, now: datetime, feeds: Iterable[str]) -> list[AlertProposal]:
        """Data-gap proposals for the given (active) feeds that are quiet for longer than usual."""
        start = self.started
        seen = {f: max(self.last_seen[f], start) for f in feeds if f in self.last_seen}
        return rules.feed_silence(seen, {f: list(self.gaps.get(f, ())) for f in seen}, now,
                                  self.cfg)

    # --- changes and time ---------------------------------------------------------------------

    def forget(self, incident_id: str) -> None:
        """Leave an incident out of every rule (merged into another, or a false alarm)."""
        e = self.events.pop(str(incident_id), None)
        if e is None:
            return
        township = (e.get("township") or {}).get("code")
        if township is not None:
            cell = (township, e.get("type"), rules.window_end(e["occurred_at"], self.cfg))
            ids = self._cells.get(cell)
            if ids and e["id"] in ids:
                ids.remove(e["id"])
        grid = (e.get("grid") or {}).get("code")
        if grid in self._by_grid and e["id"] in self._by_grid[grid]:
            self._by_grid[grid].remove(e["id"])
        # the spatial hashes skip ids no longer in `events`; `prune` drops them

    def restore_repeat(self, key: str, incident_ids: Iterable[str]) -> None:
        """Remember a live repeat-place alert's reports (after a restart): its key stays."""
        for i in incident_ids:
            self._repeat_key.setdefault(str(i), key)

    def restore_mass(self, key: str, incident_ids: Iterable[str]) -> None:
        """Remember a live mass-gathering alert's group (after a restart), so it keeps growing."""
        group = {str(i) for i in incident_ids}
        self._mass_groups[key] = group
        for i in group:
            self._mass_key[i] = key

    def mass_key(self, incident_id: str) -> str | None:
        """The key of the mass-gathering alert an incident was grouped into, if any."""
        return self._mass_key.get(str(incident_id))

    def prune(self, now: datetime) -> None:
        """Drop what every rule's window has left behind."""
        cutoff = now - self.horizon
        old = [i for i, e in self.events.items() if e["occurred_at"] <= cutoff]
        for i in old:
            del self.events[i]
        alive = self.events.__contains__
        recent_cutoff = now - 2 * self._span
        self._mass.keep(lambda i: i in self.events
                        and self.events[i]["occurred_at"] > recent_cutoff)
        self._place.keep(alive)
        for grid in list(self._by_grid):
            kept = [i for i in self._by_grid[grid] if alive(i)]
            if kept:
                self._by_grid[grid] = kept
            else:
                del self._by_grid[grid]
        for cell in [c for c in self._cells if c[2] <= cutoff]:
            del self._cells[cell]
        for i in [i for i in self._repeat_key if i not in self.events]:
            del self._repeat_key[i]
        for i in [i for i in self._mass_key if i not in self.events]:
            key = self._mass_key.pop(i)
            group = self._mass_groups.get(key)
            if group is not None:
                group.discard(i)
                if not group:
                    del self._mass_groups[key]
