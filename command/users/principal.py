"""Who is asking, and what they may see: pure scope rules used by every face."""

from __future__ import annotations

from dataclasses import dataclass

COUNTY_ROLES = ("duty", "leader", "admin")
ROLE_LABELS = {"duty": "值班员", "leader": "指挥长", "township": "乡镇(街道)工作人员",
               "grid": "网格员", "dept": "入驻部门", "admin": "管理员", "desk": "窗口受理员"}


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

    def sees_incident(self, township: str | None, grid: str | None,
                      ordered_units: frozenset[str] = frozenset()) -> bool:
        """Whether this user may see an incident located in (township, grid).

        `ordered_units` are the units holding an order node of that incident (a department sees
        the incidents it was ordered to act on).
        """
        if self.county_wide:
            return True
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
        """The `/live` rooms this user joins: everything, or their own unit."""
        return ["county"] if self.county_wide else [f"unit:{self.unit_code}"]


def incident_rooms(township: str | None, grid: str | None,
                   ordered_units: tuple[str, ...] = ()) -> list[str]:
    """The `/live` rooms an incident change goes to."""
    rooms = ["county"]
    rooms += [f"unit:{code}" for code in (township, grid, *ordered_units) if code]
    return list(dict.fromkeys(rooms))  # each room once
