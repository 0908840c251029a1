"""The incident's closed loop (工作闭环): states, legal transitions and who may make them.

Pure rules, no database. The loop follows the national grid-management standard:
上报 → 受理 → 派遣 → 处置 → 反馈 → 核查结案 → 回访 → 归档, plus 上报升级, 合并 and 误报.

Decisions worth knowing:

- County roles (duty, leader, admin) accept, dispatch, verify, close, merge and declare a false
  alarm. Township and grid staff may accept, handle, report back and escalate incidents in their
  scope (即接即办: what can be settled on the spot is settled there). Departments act through their
  order nodes, never on the incident itself.
- `escalated` goes one level up (grid → township → county, 小事不出村、大事不出镇): only township and
  grid staff escalate, from their own level. The level above takes an escalated incident by
  accepting it (township or county) or by dispatching an order (county).
- `responded → in_progress` is the county sending a report back for more work, and
  `followed_up → in_progress` a matter reopened after an unsatisfied follow-up.
- Moves only the software makes: `reported|accepted → closed` (a closure at the window) and
  `dispatched|in_progress → accepted` (the lead unit of a matter's route returned it).
- `closed`, `merged` and `false_alarm` are final.

>>> allowed("reported", "grid")
['accepted', 'escalated']
>>> check("verified", "closed", "leader")
"""

from __future__ import annotations

from command.errors import DomainError, Forbidden

STATE_LABELS = {
    "reported": "上报", "accepted": "受理", "dispatched": "派遣", "in_progress": "处置",
    "responded": "反馈", "verified": "核查结案", "followed_up": "回访", "closed": "归档",
    "escalated": "上报升级", "merged": "合并", "false_alarm": "误报",
}
STATES = tuple(STATE_LABELS)
FINAL = ("closed", "merged", "false_alarm")

COUNTY = ("duty", "leader", "admin", "desk")  # desk: on matters only (scope)
LOCAL = ("township", "grid")

# state -> {next state: roles allowed to make the move}
SYSTEM_ONLY: tuple[str, ...] = ()  # moves the software makes itself (closures, a lead's return)

TRANSITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "reported": {"accepted": COUNTY + LOCAL, "escalated": LOCAL, "merged": COUNTY,
                 "false_alarm": COUNTY, "closed": SYSTEM_ONLY},
    "accepted": {"dispatched": COUNTY, "in_progress": COUNTY + LOCAL, "escalated": LOCAL,
                 "merged": COUNTY, "false_alarm": COUNTY, "closed": SYSTEM_ONLY},
    "dispatched": {"in_progress": COUNTY + LOCAL, "responded": COUNTY + LOCAL,
                   "escalated": LOCAL, "accepted": SYSTEM_ONLY},
    "in_progress": {"responded": COUNTY + LOCAL, "escalated": LOCAL, "accepted": SYSTEM_ONLY},
    "responded": {"verified": COUNTY, "in_progress": COUNTY},
    "verified": {"followed_up": COUNTY, "closed": COUNTY},
    "followed_up": {"closed": COUNTY, "in_progress": COUNTY},  # reopened for review
    "escalated": {"accepted": COUNTY + ("township",), "dispatched": COUNTY},
    "closed": {}, "merged": {}, "false_alarm": {},
}

# levels from bottom to top; an incident's `level` says who handles it now
LEVELS = ("grid", "township", "county")
ROLE_LEVEL = {"grid": "grid", "township": "township", "duty": "county", "leader": "county",
              "admin": "county", "desk": "county"}


class TransitionError(DomainError):
    """A move the loop does not allow from here (HTTP 409), with the moves that are allowed."""

    def __init__(self, message: str, allowed: list[str]):
        super().__init__("conflict", message)
        self.allowed = list(allowed)

    def as_dict(self) -> dict:
        """The error object plus the allowed moves."""
        return {**super().as_dict(), "allowed": self.allowed}


def allowed(state: str, role: str) -> list[str]:
    """The states `role` may move an incident to from `state`, in loop order."""
    return [to for to, roles in TRANSITIONS.get(state, {}).items() if role in roles]


def successors(state: str) -> list[str]:
    """Every state reachable in one move from `state`, whoever makes it."""
    return list(TRANSITIONS.get(state, {}))


def check(state: str, to: str, role: str) -> None:
    """Raise TransitionError unless `role` may move an incident from `state` to `to`."""
    legal = allowed(state, role)
    if not any(role in roles for moves in TRANSITIONS.values() for roles in moves.values()):
        raise Forbidden(f"{_label(role)}不处理事件状态，只办理下达给本单位的指令")
    if to not in STATE_LABELS:
        raise TransitionError(f"no such state {to!r}", legal)
    if to not in legal:
        if to in successors(state):
            message = f"{_label(role)}不能把事件从「{STATE_LABELS[state]}」转为「{STATE_LABELS[to]}」"
        else:
            message = f"事件不能从「{STATE_LABELS.get(state, state)}」转为「{STATE_LABELS[to]}」"
        raise TransitionError(message, legal)


def check_data(to: str, *, rating=None, merged_into=None) -> None:
    """Raise DomainError when the target state lacks what it needs (rating, merged_into)."""
    if to == "followed_up":
        if rating is None:
            raise DomainError("missing_field", "rating: a follow-up needs a satisfaction rating 1-5",
                              "rating")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise DomainError("out_of_range", "rating: must be an integer from 1 to 5", "rating")
    if to == "merged" and not merged_into:
        raise DomainError("missing_field", "merged_into: name the incident to merge into",
                          "merged_into")


def escalation(current_level: str | None, role: str) -> tuple[str, str]:
    """(from level, to level) when `role` escalates an incident handled at `current_level`.

    The escalation starts at the higher of the incident's level and the escalator's own, and
    goes exactly one level up; a grid worker cannot escalate what the township already holds.

    >>> escalation("grid", "grid")
    ('grid', 'township')
    >>> escalation("grid", "township")
    ('township', 'county')
    """
    mine = ROLE_LEVEL.get(role)
    if mine not in ("grid", "township"):
        raise TransitionError(f"{_label(role)}不能上报升级", [])
    current = current_level if current_level in LEVELS else "grid"
    if LEVELS.index(current) > LEVELS.index(mine):
        raise TransitionError(
            f"事件已由{_level_label(current)}办理，{_label(role)}不能再上报升级", [])
    return mine, LEVELS[LEVELS.index(mine) + 1]


def _label(role: str) -> str:
    from command.users.principal import ROLE_LABELS

    return ROLE_LABELS.get(role, role)


def _level_label(level: str) -> str:
    return {"grid": "网格", "township": "乡镇(街道)", "county": "县级"}.get(level, level)
