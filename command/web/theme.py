"""Look of the web pages' Plotly charts and labels; the page CSS lives in assets/wall.css."""

FONT_FAMILY = '"Noto Sans CJK SC", "Microsoft YaHei", sans-serif'
CHART_TEXT = "#b8c7de"
CHART_GRID = "rgba(120, 160, 220, 0.14)"
CHART_AXIS = "rgba(120, 160, 220, 0.35)"
CHART_FONT_SIZE = 13  # px on a 1920-pixel-wide screen; the page scales it with the window
CHART_BACKGROUND = "rgba(0, 0, 0, 0)"
HOVER_BACKGROUND = "#1b2740"

SEVERITY_NUMERALS = {1: "Ⅰ", 2: "Ⅱ", 3: "Ⅲ", 4: "Ⅳ"}
SEVERITY_NAMES = {1: "特别重大", 2: "重大", 3: "较大", 4: "一般"}

ACCENT = "#4cc9f0"
OUTSIDE_COLOR = "#8fa3bf"
# the four warning colours 红 / 橙 / 黄 / 蓝 by severity (1 = Ⅰ级, most severe)
SEVERITY_COLORS = {1: "#ff3b3b", 2: "#ff8c1a", 3: "#ffd000", 4: "#3d8bfd"}
