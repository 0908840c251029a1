"""Who is asking, and what they may see: pure scope rules used by every face."""

from __future__ import annotations

from dataclasses import dataclass

COUNTY_ROLES = ("duty", "leader", "admin")
# county-level roles with no unit: the three above see everything; the window clerk (desk) sees
# every matter of the county and nothing else
COUNTY_LEVEL_ROLES = (*COUNTY_ROLES, "desk")
ROLE_LABELS = {"duty": "值班员", "leader": "指挥长", "township": "乡镇(街道)工作人员",
               "grid": "网格员", "dept": "入驻部门", "admin": "管理员", "desk": "窗口受理员"}
MATTERS_ROOM = "matters"  # the /live room of every matter's changes (the window's clerks)


@dataclass(frozen=True)
class Principal:
    """A signed-in user: name, role and the unit they act for (a dept is a unit too)."""

    name: str
    role: str
    unit_code: str | None = None

    @property
    def county_wide(self) -> bool:
        """Duty officers, leaders and administrators see the whole county."""
        return self.role in COUNTY_ROLES

    @property
    def matters_only(self) -> bool:
        """The window's clerk sees every matter of the county, and no other incident."""
        return self.role == "desk"

    def sees_incident(self, township: str | None, grid: str | None,
                      ordered_units: frozenset[str] = frozenset(), *,
                      type_code: str | None = None, reporter: str | None = None) -> bool:
        """Whether this user may see an incident of `type_code` located in (township, grid).

        `ordered_units` are the units holding an order node of that incident (a department sees
        the incidents it was ordered to act on); a user always sees what they reported
        (`reporter`), wherever it was located.
        """
        if self.county_wide or (reporter is not None and reporter == self.name):
            return True
        if self.matters_only:
            from command.matters.categories import is_matter

            return is_matter(type_code)
        if self.role == "township":
            return township == self.unit_code or self.unit_code in ordered_units
        if self.role == "grid":
            return grid == self.unit_code or self.unit_code in ordered_units
        if self.role == "dept":
            return self.unit_code in ordered_units
        return False

    def sees_node(self, target_code: str, target_parent: str | None) -> bool:
        """Whether this user may see an order node addressed to `target_code`."""
        if self.county_wide:
            return True
        if self.role == "township":
            return self.unit_code in (target_code, target_parent)
        return target_code == self.unit_code

    def live_rooms(self) -> list[str]:
        """The `/live` rooms this user joins: everything, every matter, or their own unit; and
        their own (the changes of what they reported)."""
        if self.county_wide:
            return ["county"]
        own = f"user:{self.name}"
        if self.matters_only:
            return [MATTERS_ROOM, own]
        return [f"unit:{self.unit_code}", own]


def incident_rooms(township: str | None, grid: str | None,
                   ordered_units: tuple[str, ...] = (), *, matter: bool = False,
                   reporter: str | None = None) -> list[str]:
    """The `/live` rooms an incident change goes to."""
    rooms = ["county", MATTERS_ROOM] if matter else ["county"]
    if reporter:
        rooms.append(f"user:{reporter}")
    rooms += [f"unit:{code}" for code in (township, grid, *ordered_units) if code]
    return list(dict.fromkeys(rooms))  # each room once
