"""Open a rendered status page in headless Chromium, screenshot it and read its DOM.

    python -m scripts.screenshot_status status.html docs/status-page.png

Drives Debian's `chromium` through `/usr/bin/chromedriver` with selenium (a pinned dev
dependency); nothing is downloaded. Prints the console errors and the marks per source.
The browser test (tests/e2e/test_status_page_browser.py) uses `inspect_page` too.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1100

# Counts of the page's marks per timeline, read in the browser's DOM.
_COUNT_JS = """
const out = {};
for (const svg of document.querySelectorAll('svg.timeline')) {
  out[svg.dataset.source] = {
    backups: svg.querySelectorAll('[data-backup]').length,
    buckets: svg.querySelectorAll('[data-bucket]').length,
    bucketed: Array.from(svg.querySelectorAll('[data-bucket]')).reduce((n, el) => n + Number(el.dataset.count), 0),
    drills: svg.querySelectorAll('[data-drill]').length,
    pinned: svg.querySelectorAll('[data-backup][data-pinned="true"]').length,
    states: Array.from(svg.querySelectorAll('[data-backup]')).map(el => el.dataset.state),
  };
}
return JSON.stringify(out);
"""


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    marks: dict[str, dict[str, Any]] = field(default_factory=dict)
    health: str | None = None
    height: int = 0


def browser_available() -> str | None:
    """None when chromium and chromedriver are installed, else what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists() and not shutil.which(Path(p).name)]
    return (
        f"{', '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver)"
        if missing
        else None
    )


def inspect_page(html_path: Path, png_path: Path | None = None) -> PageCheck:
    """Load `html_path` (file://), optionally save a full-page PNG, return console errors and mark counts."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WIDTH},900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(html_path.resolve().as_uri())
        check = PageCheck()
        check.marks = json.loads(driver.execute_script(_COUNT_JS))
        badge = driver.execute_script(
            "const b = document.querySelector('[data-health]'); return b && b.dataset.health"
        )
        check.health = str(badge) if badge else None
        check.height = int(driver.execute_script("return document.documentElement.scrollHeight"))
        check.console_errors = [
            entry["message"]
            for entry in driver.get_log("browser")
            if entry.get("level") in ("SEVERE", "ERROR")
        ]
        if png_path is not None:
            # The whole page, not just the window: Chrome DevTools' own full-size capture.
            shot = driver.execute_cdp_cmd(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True, "fromSurface": True},
            )
            png_path.parent.mkdir(parents=True, exist_ok=True)
            png_path.write_bytes(base64.b64decode(shot["data"]))
        return check
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    args = parser.parse_args(argv)
    problem = browser_available()
    if problem:
        sys.stderr.write(f"error: {problem}\n")
        return 2
    check = inspect_page(args.html, args.png)
    sys.stdout.write(
        json.dumps({"console_errors": check.console_errors, "marks": check.marks}, indent=2) + "\n"
    )
    return 1 if check.console_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
