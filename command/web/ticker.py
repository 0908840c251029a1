"""The alert ticker's mount point, the same on every page (assets/alert_ticker.js fills it).

The element carries what the script needs and nothing it could trust for permissions: the
signed-in user's role and unit (to decide which buttons to offer; the server decides what is
allowed) and the alert sequence number at render time (catch-up with `since` starts there).
"""

from __future__ import annotations

from dash import html
from flask import current_app

from command.db import last_seq

TICKER = "alert-ticker"  # /command, /township and /grid (the wall keeps ids.ALERT_STRIP)
MODES = ("wall", "desk", "phone")


def mount(principal, *, mode: str, element_id: str = TICKER) -> html.Div:
    """The empty ticker element for `mode` (wall: cards over the map; desk: a banner row;
    phone: a compact read-only strip)."""
    if mode not in MODES:
        raise ValueError(f"mode: one of {', '.join(MODES)}")
    seq = 0
    if principal is not None:  # None while Dash builds its validation layout
        with current_app.extensions["cmdcenter"].read() as session:
            seq = last_seq(session, counter="alert_seq")
    return html.Div(id=element_id, className=f"at-ticker at-{mode}", role="region", **{
        "aria-label": "预警",
        "data-alert-ticker": mode,
        "data-role": principal.role if principal is not None else "",
        "data-unit": (principal.unit_code or "") if principal is not None else "",
        "data-alert-seq": str(seq),
    })
