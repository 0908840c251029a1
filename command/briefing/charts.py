"""Chart images of a period brief, drawn offline with matplotlib (Agg) in a CJK font.

No pyplot: each chart is its own `Figure`, so nothing global changes and threads don't meet.
The font is the first CJK font found on the system (Noto Sans CJK from fonts-noto-cjk, Source
Han Sans, WenQuanYi …); without one the brief fails with a clear message rather than printing
boxes.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

from command.briefing.data import PeriodBrief
from command.errors import DomainError

PREFERRED = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "Droid Sans Fallback", "Noto Serif CJK SC", "SimHei",
             "Microsoft YaHei", "PingFang SC")
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"),
             str(Path.home() / ".local/share/fonts"))
_FILE_HINTS = ("NotoSansCJK", "NotoSerifCJK", "SourceHanSans", "wqy", "DroidSansFallback",
               "NotoSansSC")
CURRENT = "#1d4ed8"
PREVIOUS = "#a8b8d0"
ACCENT = "#c2410c"
DPI = 150

_font_name: str | None = None
# rc_context changes matplotlib's global settings for its duration: one drawing at a time
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Chart:
    """One rendered chart: its caption and PNG bytes."""

    key: str
    title: str
    png: bytes


class FontMissing(DomainError):
    """No CJK font to draw Chinese labels with."""

    def __init__(self) -> None:
        super().__init__("unavailable",
                         "no CJK font found for the chart images: install fonts-noto-cjk "
                         "(apt-get install fonts-noto-cjk)")


def cjk_font() -> str:
    """The family name of a CJK font matplotlib can use (found once per process)."""
    global _font_name
    if _font_name is not None:
        return _font_name
    with _LOCK:
        _font_name = _find_cjk_font()
    return _font_name


def _find_cjk_font() -> str:
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    name = next((n for n in PREFERRED if n in have), None)
    if name is None:  # installed after matplotlib cached its font list: add the files
        for folder in FONT_DIRS:
            root = Path(folder)
            if not root.is_dir():
                continue
            for path in sorted(root.rglob("*")):
                if path.suffix.lower() in (".ttc", ".otf", ".ttf") and \
                        any(h.lower() in path.name.lower() for h in _FILE_HINTS):
                    try:
                        font_manager.fontManager.addfont(str(path))
                    except (OSError, RuntimeError, ValueError):
                        continue
        have = {f.name for f in font_manager.fontManager.ttflist}
        name = next((n for n in PREFERRED if n in have), None)
    if name is None:
        raise FontMissing()
    return name


def period_charts(brief: PeriodBrief) -> list[Chart]:
    """The charts of a period brief: trend, by type, by township, satisfaction."""
    import matplotlib

    font = cjk_font()
    rc = {"font.family": "sans-serif", "font.sans-serif": [font], "axes.unicode_minus": False,
          "font.size": 10, "axes.spines.top": False, "axes.spines.right": False}
    charts = []
    with _LOCK, matplotlib.rc_context(rc):
        charts.append(Chart("trend", "图1 事件数量走势" + ("（按小时）" if brief.period.kind == "day"
                                                         else "（按日）"), _trend(brief)))
        charts.append(Chart("types", "图2 分类型事件数（本期与上期）", _pairs(
            [(r.label, r.current, r.previous) for r in brief.by_type], horizontal=False)))
        charts.append(Chart("townships", "图3 分乡镇（街道）事件数（本期与上期）", _pairs(
            [(r.label, r.current, r.previous) for r in brief.by_township], horizontal=True)))
        charts.append(Chart("satisfaction", "图4 回访满意度评分分布", _ratings(brief)))
    return charts


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _integers(axis) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _trend(brief: PeriodBrief) -> bytes:
    labels = [label for label, _ in brief.trend]
    values = [n for _, n in brief.trend]
    fig = _figure(7.5, 2.8)
    ax = fig.subplots()
    xs = list(range(len(values)))
    ax.bar(xs, values, color=CURRENT, width=0.7)
    step = max(1, len(labels) // 16)
    ax.set_xticks(xs[::step], labels[::step], fontsize=8)
    ax.set_ylabel("起")
    _integers(ax.yaxis)
    ax.grid(axis="y", color="#e3e8ef", linewidth=0.8)
    ax.set_axisbelow(True)
    if not values:
        ax.text(0.5, 0.5, "本期暂无数据", transform=ax.transAxes, ha="center", va="center")
    return _png(fig)


def _pairs(rows: list[tuple[str, int, int]], *, horizontal: bool) -> bytes:
    labels = [r[0] for r in rows]
    now = [r[1] for r in rows]
    before = [r[2] for r in rows]
    n = len(rows)
    if horizontal:
        fig = _figure(7.5, max(2.4, 0.32 * n + 0.8))
        ax = fig.subplots()
        ys = list(range(n))
        ax.barh([y + 0.2 for y in ys], before, height=0.4, color=PREVIOUS, label="上期")
        ax.barh([y - 0.2 for y in ys], now, height=0.4, color=CURRENT, label="本期")
        ax.set_yticks(ys, labels, fontsize=8)
        ax.invert_yaxis()
        _integers(ax.xaxis)
        ax.grid(axis="x", color="#e3e8ef", linewidth=0.8)
        for y, v in zip(ys, now):
            ax.text(v, y - 0.2, f" {v}", va="center", fontsize=7, color=CURRENT)
    else:
        fig = _figure(7.5, 3.0)
        ax = fig.subplots()
        xs = list(range(n))
        ax.bar([x - 0.2 for x in xs], now, width=0.4, color=CURRENT, label="本期")
        ax.bar([x + 0.2 for x in xs], before, width=0.4, color=PREVIOUS, label="上期")
        ax.set_xticks(xs, labels, fontsize=8, rotation=0)
        _integers(ax.yaxis)
        ax.grid(axis="y", color="#e3e8ef", linewidth=0.8)
        for x, v in zip(xs, now):
            ax.text(x - 0.2, v, str(v), ha="center", va="bottom", fontsize=7, color=CURRENT)
    ax.set_axisbelow(True)
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def _ratings(brief: PeriodBrief) -> bytes:
    dist = brief.satisfaction.distribution
    fig = _figure(7.5, 2.6)
    ax = fig.subplots()
    xs = [1, 2, 3, 4, 5]
    colors = [ACCENT if r < brief.thresholds.satisfied_min else CURRENT for r in xs]
    ax.bar(xs, [dist.get(r, 0) for r in xs], color=colors, width=0.6)
    ax.set_xticks(xs, [f"{r}分" for r in xs])
    ax.set_ylabel("件")
    _integers(ax.yaxis)
    ax.grid(axis="y", color="#e3e8ef", linewidth=0.8)
    ax.set_axisbelow(True)
    if not brief.satisfaction.count:
        ax.text(0.5, 0.5, "本期暂无回访评分", transform=ax.transAxes, ha="center", va="center")
    return _png(fig)
