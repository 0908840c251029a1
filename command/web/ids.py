"""Component ids of the web pages, in one place.

The wall screen's script (assets/wall.js) receives these through the page's state store, so the
strings are written only here.
"""

# wall screen (/)
WALL_STATE = "wall-state"
WALL_TITLE = "wall-title"
LIVE_STATUS = "live-status"
CLOCK_DATE = "wall-clock-date"
CLOCK_TIME = "wall-clock-time"
SITUATION_MAP = "situation-map"
MAP_COUNT = "map-count"
INCIDENT_FEED = "incident-feed"
OUTSIDE_FEED = "outside-feed"
TOWNSHIP_CHART = "township-chart"
KPI_TOTAL = "kpi-total"
KPI_EMERGENCY = "kpi-emergency"
KPI_MASS = "kpi-mass"
KPI_PUBLIC_SAFETY = "kpi-public-safety"
KPI_MAJOR = "kpi-major"
KPI_OUTSIDE = "kpi-outside"
KPI_MATTERS_TODAY = "kpi-matters-today"  # 今日受理: the figures' registered (assets/wall_matters.js)
KPI_RESOLUTION_MONTH = "kpi-resolution-month"  # 本月化解率
ALERT_STRIP = "alert-strip"  # the wall's alert ticker over the map (assets/alert_ticker.js)
