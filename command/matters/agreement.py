"""The 人民调解协议书 of an agreed matter, as a Word document, from the recorded facts.

What it holds follows 人民调解工作若干规定 Art. 35 (DOMAIN.md): the parties (name, and for a
person sex and date of birth — read from the ID number when the deployment's key is at hand —
and address; for an organisation its credit code and address), the facts, the points in dispute,
what was agreed, how and by when it is performed, the right to apply for judicial confirmation
within 30 days (人民调解法 Art. 33), and the lines for signatures and the committee's seal.
No ID number or phone is printed: the parties sign in person.
"""

from __future__ import annotations

import io
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from command.errors import DomainError
from command.keys import Keyring
from command.matters import identity
from command.matters.categories import category_label
from command.matters.models import matter_parties


def _parties(session: Session, incident_id: str, keyring: Keyring) -> list[dict]:
    rows = session.execute(sa.select(matter_parties).where(
        matter_parties.c.incident_id == incident_id).order_by(matter_parties.c.position)).all()
    out = []
    for r in rows:
        sex = born = None
        if r.id_number_enc and keyring.available:
            born, sex = identity.birth_and_sex(keyring.decrypt(r.id_number_enc))
        out.append({"role": r.role, "kind": r.kind, "name": r.name, "sex": sex, "born": born,
                    "credit_code": r.credit_code, "address": r.address})
    return out


def _cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def document(session: Session, matter: dict, *, keyring: Keyring) -> bytes:
    """The agreement of a matter record (service.record) whose outcome is `agreed`, as .docx."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn
    from docx.shared import Pt

    outcome = matter.get("outcome")
    if not outcome or outcome["result"] != "agreed":
        raise DomainError("conflict", "only a matter settled by agreement (调解成功) has an "
                                      "agreement document")
    doc = Document()
    style = doc.styles["Normal"]
    style.font.name = "Noto Serif CJK SC"
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "Noto Serif CJK SC")
    style.font.size = Pt(12)

    title = doc.add_paragraph()
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = title.add_run("人民调解协议书")
    run.bold = True
    run.font.size = Pt(20)
    number = doc.add_paragraph(f"编号：{matter['case_no']}")
    number.alignment = WD_ALIGN_PARAGRAPH.RIGHT

    roles = {"applicant": "申请人", "respondent": "被申请人", "other": "其他当事人"}
    for p in _parties(session, matter["id"], keyring):
        if p["kind"] == "org":
            line = f"{roles[p['role']]}：{p['name']}" + \
                (f"，统一社会信用代码 {p['credit_code']}" if p["credit_code"] else "") + \
                (f"，住所地 {p['address']}" if p["address"] else "")
        else:
            line = f"{roles[p['role']]}：{p['name']}" + (f"，{p['sex']}" if p["sex"] else "") + \
                (f"，{_cn_date(p['born'])}出生" if p["born"] else "") + \
                (f"，住 {p['address']}" if p["address"] else "")
        doc.add_paragraph(line + "。")

    def section(heading: str, text: str | None) -> None:
        h = doc.add_paragraph()
        h.add_run(heading).bold = True
        doc.add_paragraph(text or "（未记录）")

    kind = category_label(matter.get("category")) or matter.get("type_label")
    section("纠纷主要事实", f"{kind}。{matter.get('summary') or matter['title']}")
    section("争议事项", matter.get("request"))
    mediators = sorted({m for s in matter.get("sessions", []) for m in s["mediators"]})
    section("调解情况", f"经{'、'.join(mediators) + '主持' if mediators else ''}调解，当事人"
                        "自愿达成如下协议：")
    doc.add_paragraph(outcome["terms"])
    how = []
    if outcome.get("amount") is not None:
        how.append(f"涉及金额人民币 {outcome['amount']:,.2f} 元")
    if outcome.get("perform_by"):
        how.append(f"于 {_cn_date(date.fromisoformat(outcome['perform_by']))}前履行完毕")
    section("履行方式和期限", "，".join(how) + "。" if how else None)
    doc.add_paragraph("本协议自各方当事人签名（盖章）、人民调解员签名并加盖人民调解委员会印章之日起"
                      "生效。当事人应当按照约定履行。经人民调解委员会调解达成的调解协议，具有法律约束力。"
                      "双方当事人可以自本协议生效之日起三十日内共同向人民法院申请司法确认。")
    doc.add_paragraph("本协议一式三份，当事人各执一份，人民调解委员会留存一份。")
    doc.add_paragraph()
    for p in _parties(session, matter["id"], keyring):
        doc.add_paragraph(f"{roles[p['role']]}（签名或盖章）：{p['name']}　　　　　　")
    doc.add_paragraph("人民调解员（签名）：" + "　".join(mediators or ["　　　　"]))
    doc.add_paragraph("记录人（签名）：")
    doc.add_paragraph("人民调解委员会（印章）")
    concluded = date.fromisoformat(outcome["at"][:10]) if outcome.get("at") else None
    doc.add_paragraph(_cn_date(concluded) if concluded else "　　年　　月　　日").alignment = \
        WD_ALIGN_PARAGRAPH.RIGHT
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
