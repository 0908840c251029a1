"""Boundary import: read a file, replace units in one transaction, re-locate, unbind feeds."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from command.core import Core
from command.feeds import service as feeds_service
from command.incidents import service as incidents_service
from command.units import service as units_service
from layers.importer import ImportReport, read_boundaries
from layers.locate import Locator

LEVELS = ("county", "township", "grid")


@dataclass
class ImportSummary:
    """What an import did, for the person who ran it."""

    report: ImportReport
    replaced_demo: bool
    relocated: int
    disabled_feeds: list[str] = field(default_factory=list)
    kept: int = 0

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        r = self.report
        out = [f"read {r.read} features, imported {r.imported} units"
               + (f", kept {self.kept} units of the levels above" if self.kept else "")]
        if self.replaced_demo:
            out.append("the built-in demo county was replaced")
        if r.repaired:
            out.append(f"repaired {len(r.repaired)} invalid polygons: {', '.join(r.repaired[:20])}"
                       + (" …" if len(r.repaired) > 20 else ""))
        for code, reason in r.skipped[:50]:
            out.append(f"skipped {code}: {reason}")
        if len(r.skipped) > 50:
            out.append(f"… and {len(r.skipped) - 50} more skipped")
        out.append(f"re-located {self.relocated} stored incidents")
        for name in self.disabled_feeds:
            out.append(f"feed {name!r} disabled: its unit no longer exists "
                       f"(re-bind with `cmdcenter feeds bind {name} --unit CODE`)")
        return out


def import_boundaries(core: Core, path: str, *, level: str, code_field: str, name_field: str,
                      parent_field: str | None = None, layer: str | None = None,
                      crs: str | None = None, repair: bool = True, progress=None) -> ImportSummary:
    """Import one level of units from a file; a file that fails to import changes nothing."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}")
    with core.read() as session:
        stored = units_service.load_gdf(session)
        demo = units_service.source(session) == "demo"
    above = LEVELS[:LEVELS.index(level)]
    kept = stored.iloc[0:0] if demo else stored[stored["level"].isin(above)]
    parents = None
    if parent_field is None and level != "county":
        parent_level = LEVELS[LEVELS.index(level) - 1]
        candidates = kept[kept["level"] == parent_level]
        parents = candidates if len(candidates) else None
    report = read_boundaries(path, level=level, code_field=code_field, name_field=name_field,
                             parent_field=parent_field, layer=layer, crs=crs, parents=parents,
                             repair=repair, progress=progress)
    tree = pd.concat([kept, report.units], ignore_index=True)
    with core.write() as session, session.begin():
        units_service.replace_all(session, tree, source="import")
        relocated = incidents_service.relocate_all(session, locator=Locator(tree))
        disabled = feeds_service.disable_unbound(session)
    return ImportSummary(report, demo, relocated, [f.name for f in disabled], kept=len(kept))
