"""Check the web page in a real browser: ``python -m benchmarks.reports.screenshot [PAGE] [PNG]``.

Runs Debian's ``chromium`` headless on ``PAGE`` (default results/index.html) and writes a PNG of it
(default: ``PAGE`` with ``.png``), with networking, sync and updates off and a throw-away profile.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,2000"]


def browser() -> str | None:
    """The chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, png: Path, timeout: float = 120) -> Path:
    """Render ``page`` in headless chromium into ``png``; raises RuntimeError when that fails."""
    exe = browser()
    if exe is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    page, png = Path(page).resolve(), Path(png).resolve()
    if not page.is_file():
        raise RuntimeError(f"{page}: no such page; write it first (python -m benchmarks.run --leaderboard)")
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}", page.as_uri()],
                              capture_output=True, text=True, timeout=timeout)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr.strip()[-300:]}")
    return png


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    page = Path(args[0] if args else "results/index.html")
    try:
        print(f"wrote {screenshot(page, Path(args[1]) if len(args) > 1 else page.with_suffix('.png'))}")
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
