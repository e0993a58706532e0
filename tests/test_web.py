"""The leaderboard web page: content read back with html.parser; rendering checked in headless chromium."""

import base64
from html.parser import HTMLParser

import pytest

from benchmarks.reports.screenshot import browser, screenshot
from benchmarks.reports.web import render_html, write_page

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
                       "AAAABJRU5ErkJggg==")
MARKDOWN = """# Leaderboard

## synthetic

- **Seeds**: 0, 1; **CPU**: test cpu, 2 thread(s); **torch** 2.x; **commit** abc.

| model | test AUC | params |
|-------|----------|--------|
| B | 0.7500 ± 0.0100 | 1,000 |
| A <x> | 0.7000 ± 0.0200 | 20 |

![synthetic_auc_vs_params.png](synthetic_auc_vs_params.png)
"""


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.cells, self.images, self.text, self._cell = [], [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag in ("td", "th"):
            self._cell = ""
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "span" and "style" in attrs:
            self.text.append(attrs["style"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.cells.append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        self.text.append(data)


def _page(tmp_path):
    (tmp_path / "synthetic_auc_vs_params.png").write_bytes(PNG)
    (tmp_path / "leaderboard.md").write_text(MARKDOWN)
    return write_page(tmp_path / "leaderboard.md")


def test_page_holds_tables_bars_environment_and_embedded_plots(tmp_path):
    page = Page()
    page.feed(_page(tmp_path).read_text())
    assert page.tags.count("table") == 1 and "script" in page.tags and "h2" in page.tags
    assert page.cells[:3] == ["model", "test AUC", "params"]
    assert page.cells[3:6] == ["B", "0.7500 ± 0.0100", "1,000"] and page.cells[6] == "A <x>"  # escaped, kept
    assert page.images == ["data:image/png;base64," + base64.b64encode(PNG).decode()]
    # interval bars on the column's scale: 0.68..0.76; B spans 0.74..0.76, A 0.68..0.72
    assert "left:75.0%;width:25.0%" in page.text and "left:0.0%;width:50.0%" in page.text
    assert any("test cpu, 2 thread(s)" in t for t in page.text)
    assert "http" not in render_html(MARKDOWN, tmp_path).replace("charset", "")  # nothing fetched from outside


@pytest.mark.skipif(browser() is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_page_renders_in_headless_chromium(tmp_path):
    png = screenshot(_page(tmp_path), tmp_path / "page.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
