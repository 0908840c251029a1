"""Put a brief's data into words: a format-free document of headings, paragraphs and tables.

Every output format (render.py) draws the same `Doc`, so md, html, pdf and docx say the same
thing with the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from command.briefing import data as d
from command.briefing.charts import Chart
from command.briefing.periods import KIND_LABELS, KIND_NAMES
from command.clock import SHANGHAI
from command.incidents.types import SEVERITY_LABELS, TYPE_LABELS
from command.incidents.workflow import STATE_LABELS

CENTER = "社会治理综合指挥中心"
_CN_NUMBERS = "一二三四五六七八九十"


@dataclass
class Heading:
    text: str
    level: int = 1


@dataclass
class Para:
    text: str
    kind: str = "body"  # body | note | lead


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: tuple[int, ...] = ()  # columns to right-align
    nowrap: tuple[int, ...] = ()  # short columns (times, states) kept on one line


@dataclass
class Image:
    key: str
    title: str
    png: bytes


@dataclass
class Doc:
    """A document: title, lines under it, then blocks; `stem` names its file."""

    title: str
    subtitle: str
    meta: list[str]
    blocks: list = field(default_factory=list)
    stem: str = "brief"
    display_name: str = "简报"


# --- formatting helpers ----------------------------------------------------------------------

def when(at: datetime | None, *, year: bool = False) -> str:
    """A local time for tables: 11-26 09:30 (or 2026-11-26 09:30)."""
    if at is None:
        return "—"
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M" if year else "%m-%d %H:%M")


def duration(delta: timedelta | float | None) -> str:
    """A span in Chinese: 45分钟, 2小时5分钟, 3天4小时."""
    if delta is None:
        return "—"
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    minutes = max(0, int(seconds // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{mins}分钟" if mins else f"{hours}小时"
    return f"{mins}分钟"


def percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def change(current: int, previous: int, unit: str = "起") -> str:
    """增加 5 起（+12.5%）, 减少 3 起（-10.0%）, 持平."""
    diff = current - previous
    if diff == 0:
        return "持平"
    word = "增加" if diff > 0 else "减少"
    if previous == 0:
        return f"{word}{abs(diff)}{unit}（上期为0）"
    return f"{word}{abs(diff)}{unit}（{diff / previous * 100:+.1f}%）"


def signed(current: int, previous: int) -> str:
    diff = current - previous
    return f"{diff:+d}" if diff else "0"


def rate(current: int, previous: int) -> str:
    if previous == 0:
        return "—" if current == 0 else "新增"
    return f"{(current - previous) / previous * 100:+.1f}%"


def sev(severity: int) -> str:
    return f"{d.NUMERALS.get(severity, '?')}级"


def type_label(code: str) -> str:
    return TYPE_LABELS.get(code, code)


def state_label(state: str | None) -> str:
    return STATE_LABELS.get(state, state or "—")


def _section(i: int, text: str) -> Heading:
    return Heading(f"{_CN_NUMBERS[i]}、{text}", 1)


def _now_line(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M")


def _day(day) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


# --- the period brief ---------------------------------------------------------------------

def period_doc(b: d.PeriodBrief, charts: list[Chart]) -> Doc:
    """The 情况报告 of a period as a document."""
    p = b.period
    chart = {c.key: c for c in charts}
    prev_label = f"上{KIND_NAMES[p.kind]}" + ("同期" if b.partial else "")
    doc = Doc(
        title=f"{b.county}社会治理情况{KIND_LABELS[p.kind]}",
        subtitle=p.label,
        meta=[f"{b.county}{CENTER} · 生成于 {_now_line(b.generated_at)}",
              f"统计截至 {_now_line(b.as_of)}（本期尚未结束，与上期同一时段比较）" if b.partial
              else f"统计区间 {_day(p.start)}0时至{_day(p.last_day)}24时（北京时间）"],
        stem=f"brief-{p.kind}-{p.key}",
        display_name=f"{b.county}社会治理情况{KIND_LABELS[p.kind]}（{p.key}）")
    add = doc.blocks.append
    s = 0

    add(_section(s, "总体情况"))
    s += 1
    add(Para(
        f"本期共接报各类事件 {b.total} 起，较{prev_label}（{b.previous.short_label}，"
        f"{b.previous_total} 起）"
        f"{change(b.total, b.previous_total)}。其中有效事件 {b.valid} 起（合并 {b.merged} 起、"
        f"误报 {b.false_alarm} 起不计）；已办结 {b.closed} 起，办结率 {percent(b.closing_rate)}"
        + (f"；已核查结案的 {b.handling_count} 起平均办理时长 {duration(b.handling_hours * 3600)}"
           "（自接报至核查结案）" if b.handling_hours is not None else "")
        + "。", "lead"))
    add(Table(["等级", "本期", "上期", "增减", "增减率"],
              [[r.label, str(r.current), str(r.previous), signed(r.current, r.previous),
                rate(r.current, r.previous)] for r in b.by_severity], numeric=(1, 2, 3, 4)))
    add(Image(chart["trend"].key, chart["trend"].title, chart["trend"].png))

    add(_section(s, "分类型情况"))
    s += 1
    top = sorted((r for r in b.by_type if r.current), key=lambda r: -r.current)[:3]
    if top:
        add(Para("数量居前的类型：" + "、".join(
            f"{r.label} {r.current} 起（{percent(r.current / b.total if b.total else None)}）"
            for r in top) + "。"))
    add(Table(["类型", "本期", "上期", "增减", "增减率"],
              [[r.label, str(r.current), str(r.previous), signed(r.current, r.previous),
                rate(r.current, r.previous)] for r in b.by_type]
              + [["合计", str(b.total), str(b.previous_total), signed(b.total, b.previous_total),
                  rate(b.total, b.previous_total)]], numeric=(1, 2, 3, 4)))
    add(Image(chart["types"].key, chart["types"].title, chart["types"].png))

    add(_section(s, "分乡镇（街道）情况"))
    s += 1
    add(Table(["乡镇（街道）", "本期", "上期", "增减", "已办结", "办结率"],
              [[r.label, str(r.current), str(r.previous), signed(r.current, r.previous),
                str(r.closed), percent(r.closed / r.current if r.current else None)]
               for r in b.by_township], numeric=(1, 2, 3, 4, 5)))
    add(Image(chart["townships"].key, chart["townships"].title, chart["townships"].png))

    if b.matters is not None:
        add(_section(s, "矛盾纠纷调处化解情况"))
        s += 1
        _matters(add, b.matters)

    add(_section(s, "群体性事件和Ⅰ、Ⅱ级事件"))
    s += 1
    mc = b.majors_counts
    add(Para(f"本期群体性事件及Ⅰ、Ⅱ级事件共 {b.majors_total} 起：Ⅰ级 {mc['severity_1']} 起，"
             f"Ⅱ级 {mc['severity_2']} 起，群体性事件 {mc['mass']} 起，涉及 "
             f"{b.thresholds.mass_people} 人以上的 {mc['people']} 起（同一事件可同时计入多项）。"))
    if b.majors:
        add(Table(["发生时间", "等级", "类型", "地点", "人数", "事件", "状态", "指令"],
                  [[when(m.occurred_at), sev(m.severity), type_label(m.type),
                    f"{m.township} {m.grid}".strip(), _n(m.people), m.title,
                    state_label(m.status), _orders_summary(m.orders)] for m in b.majors],
                  numeric=(4,), nowrap=(0, 1, 6)))
        if b.majors_total > len(b.majors):
            add(Para(f"（以上按等级、时间列出前 {len(b.majors)} 起，另有 "
                     f"{b.majors_total - len(b.majors)} 起未列出。）", "note"))
        for k, m in enumerate(b.majors, 1):
            add(Heading(f"（{k}）{m.title}", 2))
            add(Para(f"{when(m.occurred_at, year=True)}，{m.township}{m.grid}，{type_label(m.type)}，"
                     f"{sev(m.severity)}，{'涉及 ' + str(m.people) + ' 人，' if m.people else ''}"
                     f"列入原因：{'、'.join(m.reasons)}。处置结果：{_outcome(m)}"))
            if m.orders:
                add(_node_table(m.orders))
            else:
                add(Para("尚未下达指令。", "note"))

    add(_section(s, "指令逾期情况"))
    s += 1
    oc = b.overdue_counts
    add(Para(f"本期到期的指令中，未按时签收 {oc['ack']} 次、未按时办结 {oc['due']} 次，涉及指令节点 "
             f"{oc['nodes']} 个；截至统计时仍未完成的 {oc['still_open']} 次。"))
    if b.overdue:
        add(Table(["事件", "等级", "承办单位", "逾期环节", "时限", "完成时间", "逾期时长", "当前状态"],
                  [[o.incident_title, sev(o.severity), o.target,
                    "签收" if o.step == "ack" else "办结", when(o.deadline),
                    when(o.done_at) if o.done_at else "未完成", duration(o.late), o.state_label]
                   for o in b.overdue], nowrap=(1, 3, 4, 5, 6, 7)))
        total = oc["ack"] + oc["due"]
        if total > len(b.overdue):
            add(Para(f"（按时限先后列出前 {len(b.overdue)} 次，另有 {total - len(b.overdue)} 次未列出。）",
                     "note"))

    add(_section(s, "预警情况"))
    s += 1
    a = b.alerts
    add(Para(f"本期共发出预警 {a.total} 条："
             + ("，".join(f"{d.ALERT_LEVEL_LABELS[lv]} {a.by_level[lv]} 条"
                         for lv in d.ALERT_LEVEL_LABELS if a.by_level.get(lv)) or "无")
             + "。处置结果：" + ("，".join(f"{d.ALERT_STATUS_LABELS[st]} {a.by_status[st]} 条"
                                      for st in d.ALERT_STATUS_LABELS if a.by_status.get(st))
                              or "无") + "。"))
    if a.total:
        rules = sorted(a.by_rule, key=lambda r: (list(d.RULE_LABELS).index(r)
                                                 if r in d.RULE_LABELS else 99, r))
        add(Table(["预警规则", "红色", "橙色", "黄色", "蓝色", "合计", "待处置", "已确认", "已排除",
                   "已解除"],
                  [[d.RULE_LABELS.get(r, r)]
                   + [str(a.by_rule[r].get(lv, 0)) for lv in d.ALERT_LEVEL_LABELS]
                   + [str(sum(a.by_rule[r].values()))]
                   + [str(a.status_by_rule[r].get(st, 0)) for st in d.ALERT_STATUS_LABELS]
                   for r in rules], numeric=tuple(range(1, 10))))

    add(_section(s, "热点网格和重复发生地"))
    s += 1
    if b.hotspots:
        add(Para(f"事件最多的 {len(b.hotspots)} 个网格："))
        add(Table(["序号", "网格", "乡镇（街道）", "事件数", "主要类型"],
                  [[str(k), p_.grid, p_.township, str(p_.count), _types(p_.types)]
                   for k, p_ in enumerate(b.hotspots, 1)], numeric=(0, 3)))
    else:
        add(Para("本期无落入网格的事件。"))
    kinds = "、".join(type_label(t) for t in b.thresholds.repeat_types)
    if b.repeats:
        add(Para(f"重复发生地（同一网格本期{kinds} {b.thresholds.repeat_count} 起及以上）共 "
                 f"{len(b.repeats)} 处："))
        add(Table(["网格", "乡镇（街道）", "起数", "其中"],
                  [[p_.grid, p_.township, str(p_.count), _types(p_.types)] for p_ in b.repeats],
                  numeric=(2,)))
    else:
        add(Para(f"本期无重复发生地（同一网格{kinds} {b.thresholds.repeat_count} 起及以上）。"))

    add(_section(s, "回访满意度"))
    s += 1
    sat = b.satisfaction
    if sat.count:
        add(Para(f"本期事件已回访评分 {sat.count} 件，平均 {sat.mean:.2f} 分；满意（"
                 f"{b.thresholds.satisfied_min} 分及以上）{sat.satisfied} 件，满意率 "
                 f"{percent(sat.share)}。"))
    else:
        add(Para("本期事件暂无回访评分。"))
    add(Table(["评分", "1分", "2分", "3分", "4分", "5分", "合计"],
              [["件数"] + [str(sat.distribution[r]) for r in (1, 2, 3, 4, 5)] + [str(sat.count)]],
              numeric=tuple(range(1, 7))))
    add(Image(chart["satisfaction"].key, chart["satisfaction"].title, chart["satisfaction"].png))

    add(Heading("统计口径", 1))
    add(Bullets([
        "事件按发生时间（北京时间）归入统计期；接报数含后来合并或认定误报的事件，有效事件不含。",
        "办结指已核查结案、已回访或已归档；办结率 = 办结数 / 有效事件数；办理时长自接报至首次核查结案。",
        f"群体性事件和Ⅰ、Ⅱ级事件：类型为群体性事件，或涉及 {b.thresholds.mass_people} 人及以上，"
        "或等级为Ⅰ、Ⅱ级。",
        "指令逾期与督办口径一致：签收时限届满仍未签收、办结时限届满仍未办结（或退回、撤销）即为逾期；"
        "按时限所在统计期计。",
        "预警按发出时间计（解除后再次发出的按再次发出时间计），处置结果为统计时的状态。",
        "回访满意度为本期事件的回访评分（1—5分），4分及以上为满意。",
        "矛盾纠纷调处化解情况与指挥调度台“事项统计”同一口径：受理量按登记日期计（不予受理另计）；"
        "办结指登记办理结果（含撤回）或即接即办，按办结日期计；化解率 = 化解数 /（办结数 − 撤回数），"
        "化解指调解成功、支持、部分支持、已服务、属实或即接即办；满意率 =（满意 + 基本满意）/ 回访数；"
        "按期办结率 = 在法定期限（含延期）内办结数 / 办结数；上期为本期之前同样天数。",
    ]))
    return doc


def _matters(add, fig: dict) -> None:
    """The matters' figures: the county's line, then one per lead unit."""
    t, p = fig["total"], fig["total"]["previous"]
    before = f"{fig['previous']['from']} 至 {fig['previous']['to']}"
    add(Para(
        f"本期（{fig['from']} 至 {fig['to']}）受理矛盾纠纷等事项 {t['registered']} 件，较上期（{before}，"
        f"{p['registered']} 件）{change(t['registered'], p['registered'], '件')}"
        + (f"，另不予受理 {t['not_accepted']} 件" if t["not_accepted"] else "")
        + f"。办结 {t['concluded']} 件，其中化解 {t['resolved']} 件"
        + (f"、撤回 {t['withdrawn']} 件" if t["withdrawn"] else "")
        + f"，化解率 {percent(t['resolution_rate'])}（上期 {percent(p['resolution_rate'])}）；"
        f"回访 {t['followed_up']} 件，满意（含基本满意）{t['satisfied']} 件，满意率 "
        f"{percent(t['satisfaction_rate'])}（上期 {percent(p['satisfaction_rate'])}）；按期办结 "
        f"{t['on_time']} 件，按期办结率 {percent(t['on_time_rate'])}（上期 "
        f"{percent(p['on_time_rate'])}）。"))
    if fig["rows"]:
        add(Table(["主办单位", "受理量", "办结量", "化解量", "化解率", "满意率", "按期办结率", "上期化解率"],
                  [[r["name"], str(r["registered"]), str(r["concluded"]), str(r["resolved"]),
                    percent(r["resolution_rate"]), percent(r["satisfaction_rate"]),
                    percent(r["on_time_rate"]), percent(r["previous"]["resolution_rate"])]
                   for r in [*fig["rows"], t]], numeric=(1, 2, 3, 4, 5, 6, 7)))


def _n(value) -> str:
    return "—" if value is None else str(value)


def _types(types: dict[str, int]) -> str:
    return "、".join(f"{type_label(t)}{n}" for t, n in types.items())


def _orders_summary(orders: list[d.OrderLine]) -> str:
    nodes = [n for o in orders for n in o.nodes]
    if not nodes:
        return "未下达"
    done = sum(1 for n in nodes if n.state == "completed")
    return f"{len(orders)}条/{len(nodes)}个单位，办结{done}"


def _outcome(m: d.MajorIncident) -> str:
    results = [f"{n.target}：{n.result}" for o in m.orders for n in o.nodes
               if n.depth == 0 and n.state == "completed" and n.result]
    text = f"当前「{state_label(m.status)}」"
    if results:
        text += "；" + "；".join(results)
    if m.rating is not None:
        text += f"；回访满意度 {m.rating} 分"
    return text + "。"


def _node_table(orders: list[d.OrderLine]) -> Table:
    headers = ["指令", "承办单位", "状态", "签收时限", "签收", "办结时限", "办结/退回", "结果或说明"]
    rows = []
    for k, o in enumerate(orders, 1):
        for n in o.nodes:
            rows.append([
                f"{k}. {o.instruction}（{o.issued_by}，{when(o.issued_at)}，"
                f"{d.PRIORITY_LABELS.get(o.priority, o.priority)}）" if n is o.nodes[0] else "",
                ("└ " * n.depth) + n.target, n.state_label, when(n.ack_by),
                _stamp(n.acked_at, n.late_ack), when(n.due_by),
                _stamp(n.done_at, n.late_due), n.result or n.reason or ""])
    return Table(headers, rows, nowrap=(2, 3, 5))


def _stamp(at: datetime | None, late: timedelta | None) -> str:
    if at is None:
        return f"未完成，已逾期{duration(late)}" if late is not None else "—"
    return when(at) + (f"（逾期{duration(late)}）" if late is not None else "")


# --- the incident brief -------------------------------------------------------------------

def report_name(number: int) -> str:
    """专报 for the first, 续报（第N次） after."""
    return "专报" if number == 0 else f"续报（第{number}次）"


def incident_doc(b: d.IncidentBrief, mass_people: int) -> Doc:
    """A 专报 / 续报 of one incident as a document."""
    name = report_name(b.number)
    doc = Doc(
        title=f"{b.county}社会治理事件{name}",
        subtitle=b.title,
        meta=[f"{b.county}{CENTER} · 报送时间 {_now_line(b.generated_at)}",
              f"事件编号 {b.id}"],
        stem=f"incident-{b.id}-{'zb' if b.number == 0 else f'xb{b.number:02d}'}",
        display_name=f"{b.title}（{name}）")
    add = doc.blocks.append
    if not b.major:
        add(Para(f"说明：本事件为{sev(b.severity)}（{SEVERITY_LABELS[b.severity].split()[-1]}）"
                 f"{type_label(b.type)}，未达Ⅰ、Ⅱ级或群体性事件（{mass_people} 人及以上）的专报标准，"
                 "应要求编发，供参阅。", "note"))
    if b.status in ("merged", "false_alarm"):
        add(Para("说明：本事件已" + ("并入事件 " + (b.merged_into or "") if b.status == "merged"
                                  else "认定为误报") + "。", "note"))
    s = 0
    add(_section(s, "基本情况"))
    s += 1
    add(Table(["项目", "内容"], [
        ["事件名称", b.title],
        ["事件类型", type_label(b.type)],
        ["事件等级", SEVERITY_LABELS.get(b.severity, str(b.severity))],
        ["发生时间", when(b.occurred_at, year=True)],
        ["接报时间", when(b.received_at, year=True)],
        ["发生地点", f"{b.township} {b.grid}（{b.lon:.5f}, {b.lat:.5f}）"],
        ["涉及人数", f"{b.people} 人" if b.people is not None else "未报"],
        ["当前状态", state_label(b.status)],
        ["办理层级", d.LEVEL_LABELS.get(b.level, b.level)],
    ] + ([["回访满意度", f"{b.rating} 分"]] if b.rating is not None else [])))
    if b.description:
        add(Para(f"事件经过：{b.description}"))
    if b.number > 0:
        add(_section(s, f"新进展（自上次报告 {when(b.previous_at, year=True)} 以来）"))
        s += 1
        if b.changes:
            add(Bullets(b.changes))
        else:
            add(Para("自上次报告以来暂无新进展。"))
    add(_section(s, "指令下达及办理情况"))
    s += 1
    if b.orders:
        nodes = [n for o in b.orders for n in o.nodes]
        done = sum(1 for n in nodes if n.state == "completed")
        late = sum(1 for n in nodes if n.late_ack is not None or n.late_due is not None)
        add(Para(f"共下达指令 {len(b.orders)} 条，涉及承办单位 {len(nodes)} 个，已办结 {done} 个，"
                 f"出现逾期 {late} 个。"))
        add(_node_table(b.orders))
    else:
        add(Para("尚未下达指令。"))
    add(_section(s, "处置过程"))
    s += 1
    rows = [[when(t.at), t.by, f"{state_label(t.from_state)} → {state_label(t.to_state)}",
             t.note] for t in b.timeline]
    rows += [[when(p.at), p.by, f"{p.target}：{d.NODE_STATE_LABELS.get(p.state, p.state)}", p.note]
             for p in b.progress]
    # at the same instant, the software's own moves follow the order history that caused them
    order = [(t.at, 2 if t.by == d.SYSTEM else 0) for t in b.timeline] + \
        [(p.at, 1) for p in b.progress]
    rows = [r for _, _, r in sorted(zip(order, range(len(rows)), rows))]
    if rows:
        add(Table(["时间", "操作人", "环节", "说明"], rows, nowrap=(0, 1)))
    else:
        add(Para("暂无处置记录。"))
    add(_section(s, "相关预警"))
    if b.alerts:
        add(Table(["发出时间", "规则", "级别", "状态", "内容"],
                  [[when(a.raised_at), d.RULE_LABELS.get(a.rule, a.rule),
                    d.ALERT_LEVEL_LABELS.get(a.level, a.level),
                    d.ALERT_STATUS_LABELS.get(a.status, a.status), a.message] for a in b.alerts],
                  nowrap=(0, 1, 2, 3)))
    else:
        add(Para("无。"))
    return doc
