"""Colours, sizes and labels of the situation map (dark theme). One place, no logic."""

from __future__ import annotations

TYPE_CODES = (
    "emergency", "mass", "public_safety", "dispute", "petition",
    "complaint", "legal", "psych", "other",
)

TYPE_LABELS = {
    "emergency": "突发事件",
    "mass": "群体性事件",
    "public_safety": "公共安全事件",
    "dispute": "矛盾纠纷",
    "petition": "信访诉求",
    "complaint": "投诉举报",
    "legal": "法律咨询",
    "psych": "心理服务",
    "other": "其他",
}

# Distinct hues, bright enough for a dark background; the most urgent types are the warmest.
TYPE_COLORS = {
    "emergency": "#ff4d4f",
    "mass": "#c77dff",
    "public_safety": "#ffd60a",
    "dispute": "#ff9f1c",
    "petition": "#4cc9f0",
    "complaint": "#f72585",
    "legal": "#80ed99",
    "psych": "#2ec4b6",
    "other": "#adb5bd",
}

# Marker diameter in pixels by severity: 1 is the most severe.
SEVERITY_SIZES = {1: 22, 2: 17, 3: 13, 4: 10}
DEFAULT_SIZE = 10

BACKGROUND = "#0b1220"
MAP_BACKGROUND = "#101a2e"
TEXT_COLOR = "#e6edf7"
LEGEND_BACKGROUND = "rgba(11, 18, 32, 0.75)"

TOWNSHIP_FILL = "rgba(64, 132, 214, 0.10)"
TOWNSHIP_LINE = "rgba(120, 180, 255, 0.85)"
TOWNSHIP_LINE_WIDTH = 1.6
GRID_FILL = "rgba(0, 0, 0, 0)"
GRID_LINE = "rgba(120, 180, 255, 0.30)"
GRID_LINE_WIDTH = 0.5

HOVER_BACKGROUND = "#1b2740"
HOVER_FONT = "Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif"
