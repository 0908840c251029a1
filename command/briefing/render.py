"""Draw a `Doc` as Markdown, self-contained HTML, PDF (headless Chromium) or Word (docx).

Everything is offline. HTML carries its CSS inline and its images as data URIs and names only
fonts installed on the reader's machine (no web fonts). PDF is the HTML printed by the system's
Chromium (`/usr/bin/chromium`, as the browser tests use it), so CJK text comes out in the system's
Noto CJK fonts. Markdown keeps its tables readable and puts the images, as data URIs, in
reference definitions at the end.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from command.briefing.compose import Bullets, Doc, Heading, Image, Para, Table
from command.errors import DomainError

FORMATS = ("html", "md", "pdf", "docx")
MIME = {"md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8",
        "pdf": "application/pdf",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}
BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome",
            "google-chrome-stable")
PDF_TIMEOUT = 120.0
FONT_STACK = ('"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", '
              '"WenQuanYi Micro Hei", sans-serif')


class RendererMissing(DomainError):
    """A tool a format needs is not installed (e.g. Chromium for PDF)."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message)


def render(doc: Doc, fmt: str) -> bytes:
    """The document in `fmt` (html, md, pdf, docx) as bytes."""
    if fmt == "md":
        return to_markdown(doc).encode("utf-8")
    if fmt == "html":
        return to_html(doc).encode("utf-8")
    if fmt == "pdf":
        return html_to_pdf(to_html(doc))
    if fmt == "docx":
        return to_docx(doc)
    raise DomainError("invalid_field", f"format: one of {', '.join(FORMATS)}, got {fmt!r}",
                      "format")


# --- Markdown ------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip() or " "


def to_markdown(doc: Doc) -> str:
    """GitHub-flavoured Markdown; images are data URIs defined at the end."""
    out = [f"# {doc.title}", "", f"**{doc.subtitle}**", ""]
    out += [f"> {line}  " for line in doc.meta] + [""]
    images: list[Image] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += [f"{'#' * (block.level + 1)} {block.text}", ""]
        elif isinstance(block, Para):
            text = block.text if block.kind != "note" else f"*{block.text}*"
            out += [text, ""]
        elif isinstance(block, Bullets):
            out += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "|".join("---:" if i in block.numeric else "---"
                                      for i in range(len(block.headers))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("")
        elif isinstance(block, Image):
            images.append(block)
            out += [f"![{block.title}][{block.key}]", "", f"*{block.title}*", ""]
    for image in images:
        out.append(f"[{image.key}]: data:image/png;base64,{base64.b64encode(image.png).decode()}")
    return "\n".join(out).rstrip() + "\n"


# --- HTML ---------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 16mm 14mm; }
* { box-sizing: border-box; }
body { font-family: %(fonts)s; color: #1b2536; margin: 0; background: #fff;
       font-size: 14px; line-height: 1.65; }
main { max-width: 960px; margin: 0 auto; padding: 28px 32px 40px; }
header { text-align: center; border-bottom: 3px double #b91c1c; padding-bottom: 12px;
         margin-bottom: 18px; }
h1 { font-size: 26px; color: #b91c1c; letter-spacing: 0.08em; margin: 0 0 6px; }
.subtitle { font-size: 17px; font-weight: 700; margin: 0 0 6px; }
.meta { color: #4a5870; font-size: 13px; margin: 0; }
h2 { font-size: 18px; color: #16325c; margin: 22px 0 8px; padding-left: 8px;
     border-left: 4px solid #1d4ed8; break-after: avoid; }
h3 { font-size: 15px; margin: 14px 0 6px; break-after: avoid; }
p { margin: 6px 0; text-indent: 2em; }
p.lead { font-size: 15px; }
p.note { color: #7a4b00; background: #fdf6e7; padding: 6px 10px; text-indent: 0; }
ul { margin: 6px 0 6px 1.2em; padding: 0; }
table { border-collapse: collapse; width: 100%%; margin: 8px 0 12px; font-size: 12.5px; }
th, td { border: 1px solid #c9d3e2; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #eef3fb; font-weight: 700; }
th { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nw { white-space: nowrap; }
tr { break-inside: avoid; }
figure { margin: 10px 0 16px; text-align: center; break-inside: avoid; }
figure img { max-width: 100%%; height: auto; }
figcaption { font-size: 13px; color: #4a5870; }
""" % {"fonts": FONT_STACK}


def to_html(doc: Doc) -> str:
    """One self-contained HTML file: inline CSS, images as data URIs, local fonts only."""
    e = html.escape
    parts = [
        "<!doctype html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{e(doc.title)} · {e(doc.subtitle)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{CSS}</style></head><body><main>",
        f"<header><h1>{e(doc.title)}</h1><p class=\"subtitle\">{e(doc.subtitle)}</p>",
    ]
    parts += [f'<p class="meta">{e(line)}</p>' for line in doc.meta]
    parts.append("</header>")
    for block in doc.blocks:
        if isinstance(block, Heading):
            tag = "h2" if block.level == 1 else "h3"
            parts.append(f"<{tag}>{e(block.text)}</{tag}>")
        elif isinstance(block, Para):
            cls = f' class="{block.kind}"' if block.kind != "body" else ""
            parts.append(f"<p{cls}>{e(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            def cells(row, tag):
                return "".join(f"<{tag}{_classes(block, i)}>{e(str(c))}</{tag}>"
                               for i, c in enumerate(row))
            parts.append("<table><thead><tr>" + cells(block.headers, "th") + "</tr></thead><tbody>"
                         + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in block.rows)
                         + "</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode()
            parts.append(f'<figure><img alt="{e(block.title)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{e(block.title)}</figcaption></figure>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _classes(block: Table, i: int) -> str:
    names = [name for name, cols in (("num", block.numeric), ("nw", block.nowrap)) if i in cols]
    return f' class="{" ".join(names)}"' if names else ""


# --- PDF ----------------------------------------------------------------------------------

def find_browser() -> str | None:
    """The path of a Chromium (or Chrome) on this machine, or None."""
    for name in BROWSERS:
        path = name if os.path.isabs(name) else shutil.which(name)
        if path and os.access(path, os.X_OK):
            return path
    return None


def html_to_pdf(page: str, *, browser: str | None = None, timeout: float = PDF_TIMEOUT) -> bytes:
    """Print an HTML page to PDF with headless Chromium (offline: the page loads nothing)."""
    browser = browser or find_browser()
    if browser is None:
        raise RendererMissing("PDF needs Chromium: install it (apt-get install chromium "
                              "fonts-noto-cjk) or choose --format html, md or docx")
    with tempfile.TemporaryDirectory(prefix="cmdcenter-pdf-") as tmp:
        source, target = Path(tmp) / "brief.html", Path(tmp) / "brief.pdf"
        source.write_text(page, encoding="utf-8")
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--mute-audio", f"--user-data-dir={Path(tmp) / 'profile'}",
               "--no-pdf-header-footer", f"--print-to-pdf={target}", source.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RendererMissing(f"Chromium did not print the PDF within {timeout:g} s") from None
        if not target.exists() or target.stat().st_size == 0:
            detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RendererMissing("Chromium could not print the PDF"
                                  + (f": {detail[-1]}" if detail else f" (exit {proc.returncode})"))
        return target.read_bytes()


# --- docx ---------------------------------------------------------------------------------

BODY_FONT, HEAD_FONT, LATIN_FONT = "仿宋", "黑体", "Times New Roman"


def _fonts(style_or_run, east: str, size=None, bold=None, color=None) -> None:
    from docx.oxml.ns import qn

    font = style_or_run.font
    font.name = LATIN_FONT
    if size is not None:
        font.size = size
    if bold is not None:
        font.bold = bold
    if color is not None:
        font.color.rgb = color
    rpr = style_or_run.element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, rfonts)
    rfonts.set(qn("w:eastAsia"), east)


def to_docx(doc: Doc) -> bytes:
    """A Word document: 仿宋 body, 黑体 headings, tables with grid lines, charts as pictures."""
    import docx
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt, RGBColor

    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(21.0), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.2)
    section.top_margin = section.bottom_margin = Cm(2.0)
    _fonts(document.styles["Normal"], BODY_FONT, size=Pt(12))
    for name, size in (("Title", Pt(20)), ("Heading 1", Pt(15)), ("Heading 2", Pt(13))):
        _fonts(document.styles[name], HEAD_FONT, size=size, bold=True,
               color=RGBColor(0xB9, 0x1C, 0x1C) if name == "Title" else RGBColor(0x16, 0x32, 0x5C))
    props = document.core_properties
    props.title, props.subject, props.language = doc.title, doc.subtitle, "zh-CN"

    title = document.add_paragraph(doc.title, style="Title")
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    sub = document.add_paragraph()
    sub.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = sub.add_run(doc.subtitle)
    run.bold = True
    for line in doc.meta:
        p = document.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        r = p.add_run(line)
        r.font.size = Pt(10)
    for block in doc.blocks:
        if isinstance(block, Heading):
            document.add_paragraph(block.text, style="Heading 1" if block.level == 1
                                   else "Heading 2")
        elif isinstance(block, Para):
            p = document.add_paragraph()
            if block.kind != "note":
                p.paragraph_format.first_line_indent = Pt(24)
            r = p.add_run(block.text)
            if block.kind == "note":
                r.italic = True
        elif isinstance(block, Bullets):
            for item in block.items:
                document.add_paragraph(item, style="List Bullet")
        elif isinstance(block, Table):
            _docx_table(document, block, WD_TABLE_ALIGNMENT, WD_ALIGN_PARAGRAPH, Pt)
        elif isinstance(block, Image):
            document.add_picture(io.BytesIO(block.png), width=Cm(16))
            document.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
            cap = document.add_paragraph()
            cap.alignment = WD_ALIGN_PARAGRAPH.CENTER
            r = cap.add_run(block.title)
            r.font.size = Pt(10)
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def _docx_table(document, block: Table, table_align, para_align, Pt) -> None:
    table = document.add_table(rows=1 + len(block.rows), cols=len(block.headers))
    table.style = "Table Grid"
    table.alignment = table_align.CENTER
    grid = [block.headers] + block.rows
    cols = len(block.headers)
    cells = table._cells  # one pass over the table; row.cells recomputes it for every row
    for i, row in enumerate(grid):
        for j in range(cols):
            p = cells[i * cols + j].paragraphs[0]
            run = p.add_run(str(row[j]))
            run.font.size = Pt(9)
            if i == 0:
                run.bold = True
            if j in block.numeric:
                p.alignment = para_align.RIGHT
    document.add_paragraph()
