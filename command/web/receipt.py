"""The 受理回执 (registration receipt) of a matter, printed from the browser at the window.

`GET /desk/receipt/<case_no>` renders one printable page: the case number, what was registered,
the time and the window, and how to ask about the matter later. Party numbers are masked, as in
every answer. `?print=1` opens the browser's print dialog on load (the window prints it from a
hidden frame right after saving).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template_string, request

from command.errors import DomainError, NotFound
from command.matters import service
from command.web.auth import current

receipt = Blueprint("receipt", __name__)

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>受理回执 {{ m.case_no }}</title>
<style>
  @page { size: A4; margin: 18mm 16mm; }
  body { font-family: "Noto Serif CJK SC", "Noto Sans CJK SC", "SimSun", serif; color: #111;
         margin: 0 auto; max-width: 720px; padding: 24px; font-size: 15px; line-height: 1.7; }
  h1 { text-align: center; font-size: 24px; letter-spacing: 0.3em; margin: 0 0 4px; }
  .org { text-align: center; font-size: 16px; margin-bottom: 18px; }
  .case { text-align: right; font-family: monospace; font-size: 16px; }
  table { width: 100%; border-collapse: collapse; margin: 10px 0 16px; }
  th, td { border: 1px solid #333; padding: 6px 8px; vertical-align: top; text-align: left; }
  th { width: 22%; font-weight: 600; background: #f3f3f3; }
  .note { border: 1px dashed #555; padding: 10px 12px; margin-top: 12px; }
  .sign { display: flex; justify-content: space-between; margin-top: 28px; }
  @media print { body { padding: 0; } }
</style></head>
<body>
<h1>受理回执</h1>
<div class="org">{{ county }}社会矛盾纠纷调处化解中心</div>
<div class="case">案号：{{ m.case_no }}</div>
<table>
  <tr><th>事项</th><td>{{ m.title }}</td></tr>
  <tr><th>类型 / 类别</th><td>{{ m.type_label }}{% if m.category_label %} · {{ m.category_label }}{% endif %}</td></tr>
  <tr><th>来源渠道</th><td>{{ m.channel_label }}</td></tr>
  <tr><th>发生地点</th><td>{{ place }}</td></tr>
  {% if m.summary %}<tr><th>简要情况</th><td>{{ m.summary }}</td></tr>{% endif %}
  {% if m.request %}<tr><th>申请事项</th><td>{{ m.request }}</td></tr>{% endif %}
  {% for p in m.parties %}
  <tr><th>{{ p.role_label }}</th><td>{{ p.name }}（{{ p.kind_label }}）{% if p.id_number %}
    · 身份证号 {{ p.id_number }}{% endif %}{% if p.credit_code %} · 统一社会信用代码 {{ p.credit_code }}{% endif %}{% if p.phone %}
    · 电话 {{ p.phone }}{% endif %}</td></tr>
  {% endfor %}
  <tr><th>受理时间</th><td>{{ registered }}</td></tr>
  <tr><th>受理窗口</th><td>{{ window }}</td></tr>
  <tr><th>办理情况</th><td>{% if m.closure %}{{ m.closure_label }}：{{ m.closure_note }}{% else %}已登记受理，将按规定分流交办，并在法定期限内办理{% endif %}</td></tr>
</table>
<div class="note">凭本回执案号 <b>{{ m.case_no }}</b>，可到受理窗口或电话询问办理进度；本案号自受理起至办结、回访全程不变（一案一编码）。请妥善保管本回执。</div>
<div class="sign"><span>受理人：{{ m.registered_by or "" }}</span><span>（受理专用章）</span></div>
{% if autoprint %}<script>window.addEventListener("load", function () { window.print(); });</script>{% endif %}
</body></html>"""


@receipt.get("/desk/receipt/<case_no>")
def show(case_no):
    principal = current()
    if principal is None:
        abort(401)
    core = current_app.extensions["cmdcenter"]
    try:
        with core.read() as session:
            locator = core.units.current(session)
            m = service.record(session, case_no, by=principal, locator=locator)
            county = locator.unit(locator.county_code())["name"] if locator.county_code() else ""
    except NotFound:
        abort(404)
    except DomainError:
        abort(403)
    place = " · ".join(u["name"] for u in (m["township"], m["grid"]) if u) or "辖区外"
    if m["approximate"]:
        place += "（按村（社区）登记）"
    if m["registered_unit"]:  # a township's own window
        window = f"{m['township']['name'] if m['township'] else ''}受理点（{m['registered_by']}）"
    else:
        window = f"无差别受理窗口（{m['registered_by'] or '数据接入'}）"
    return render_template_string(PAGE, m=m, county=county, place=place, window=window,
                                  registered=m["registered_at"].replace("T", " ")[:16],
                                  autoprint=request.args.get("print") == "1")
