"""results/index.html: the leaderboard as one self-contained web page, readable without a server.

Built from the leaderboard's markdown (so it shows exactly what the markdown shows, whatever its
columns): headings, the header bullets (data, seeds, CPU, threads, commit: the run environment),
every table sortable by clicking a column (a small inline script), cells of the form ``mean ± std``
drawn with a bar of the interval on the column's scale, and the plots embedded as base64 PNG.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from data.atomic import write_text_atomically

INTERVAL = re.compile(r"^(-?\d+\.\d+) ± (\d+\.\d+)$")
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)]+)\)")

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px}
th{background:#f0f0f0;cursor:pointer;user-select:none}th:hover{background:#e0e0ff}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{position:relative;height:4px;background:#eee;margin-top:2px}
.bar span{position:absolute;height:4px;background:#4a7bd0}.bar i{position:absolute;width:2px;height:8px;
top:-2px;background:#123}img{max-width:49%;border:1px solid #ddd}code{background:#f4f4f4}"""

SCRIPT = """document.querySelectorAll('table.sortable th').forEach(function(th, col){
 th.addEventListener('click', function(){
  var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
  var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
  function key(r){var t = r.cells[col] ? r.cells[col].dataset.v || r.cells[col].textContent : '';
   var n = parseFloat(t.replace(/,/g, '')); return isNaN(n) ? t : n;}
  rows.sort(function(a, b){var x = key(a), y = key(b);
   return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);});
  rows.forEach(function(r){body.appendChild(r);});
 });
});"""


def _inline(text: str) -> str:
    """Markdown's **bold** and `code` in one escaped line."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    """A github markdown table as a sortable HTML table; ``mean ± std`` cells get an interval bar."""
    head, body = _cells(lines[0]), [_cells(line) for line in lines[2:]]
    spans = {}
    for col in range(len(head)):
        found = [INTERVAL.match(row[col]) for row in body if col < len(row)]
        values = [(float(m[1]) - float(m[2]), float(m[1]) + float(m[2])) for m in found if m]
        if values:
            spans[col] = (min(v[0] for v in values), max(v[1] for v in values))
    out = ['<table class="sortable"><thead><tr>']
    out += [f"<th title='click to sort'>{html.escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in body:
        out.append("<tr>")
        for col, cell in enumerate(row):
            m = INTERVAL.match(cell)
            if m and col in spans and spans[col][1] > spans[col][0]:
                lo, hi = spans[col]
                mean, std = float(m[1]), float(m[2])
                left, width = (mean - std - lo) / (hi - lo) * 100, 2 * std / (hi - lo) * 100
                dot = (mean - lo) / (hi - lo) * 100
                out.append(f'<td class="num" data-v="{mean}">{html.escape(cell)}<div class="bar">'
                           f'<span style="left:{left:.1f}%;width:{max(width, 0.5):.1f}%"></span>'
                           f'<i style="left:{dot:.1f}%"></i></div></td>')
            else:
                numeric = re.fullmatch(r"[-+]?[\d,]+(\.\d+)?", cell) is not None
                out.append(f'<td{" class=num" if numeric else ""}>{html.escape(cell)}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _image(folder: Path, alt: str, name: str) -> str:
    path = folder / name
    if not path.is_file():
        return f"<p>(plot {html.escape(name)} missing)</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(markdown: str, folder: Path) -> str:
    """The page of a leaderboard ``markdown`` whose plots lie in ``folder``."""
    lines = markdown.splitlines()
    parts, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            j = i
            while j < len(lines) and lines[j].startswith("|"):
                j += 1
            parts.append(_table(lines[i:j]))
            i = j
            continue
        if line.startswith("## "):
            parts.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("# "):
            parts.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("- "):
            parts.append(f"<ul><li>{_inline(line[2:])}</li></ul>")
        elif IMAGE.search(line):
            parts.append("<p>" + "".join(_image(folder, alt, name) for alt, name in IMAGE.findall(line)) + "</p>")
        elif line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
        i += 1
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>ctrbench leaderboard</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts)
            + f"\n<script>{SCRIPT}</script></body></html>\n")


def write_page(markdown_path: Path) -> Path:
    """Write ``index.html`` beside the leaderboard markdown at ``markdown_path``."""
    markdown_path = Path(markdown_path)
    page = markdown_path.with_name("index.html")
    write_text_atomically(page, render_html(markdown_path.read_text(), markdown_path.parent))
    return page
