"""The HTML report rendered by a real browser (headless Chromium): the page loads without console messages, its
tables and figures are laid out with a size, every image decodes, and a screenshot is not blank."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib.image import imread
from test_report_html import demo_run

from benchkit.report.run_report import ReportOptions, RunReport

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0")
# appended to a copy of the page: after load, what the browser made of every image and table, into the DOM
PROBE = """<script>
window.addEventListener("load", () => {
  const box = e => { const r = e.getBoundingClientRect(); return {w: r.width, h: r.height}; };
  const images = [...document.images].map(i => ({alt: i.alt, decoded: i.complete && i.naturalWidth > 0, ...box(i)}));
  const tables = [...document.querySelectorAll("table")].map(t => ({cls: t.className, rows: t.rows.length, ...box(t)}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images, tables});
  document.body.appendChild(out);
  console.log("probe done");
});
</script>
"""


def browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no Chromium or Chrome on PATH to render the HTML report (Debian: apt-get install -y chromium)")


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per start
    return subprocess.run([browser(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=True)


def console(stderr: str) -> list[str]:
    return re.findall(r":CONSOLE[^\]]*\] \"(.*)\", source:", stderr)


def test_report_renders_in_chromium(tmp_path):
    run = demo_run(tmp_path)
    (run / "environment.json").write_text(json.dumps({"benchkit": "0.1.0", "device": "cpu",
                                                      "packages": {"torch": "2.4.1"}}))
    page = RunReport(run, ReportOptions(compare=[("mae-inv", "dino-inv")])).text("html")
    report, probed = tmp_path / "report.html", tmp_path / "probed.html"
    report.write_text(page)
    probed.write_text(page.replace("</body>", PROBE + "</body>"))

    done = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert console(done.stderr) == ["probe done"]  # messages are captured, and the page logged nothing else
    found = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S).group(1))
    assert {i["alt"] for i in found["images"]} == {"confusion-world-mae-inv", "cost-world"}
    for image in found["images"]:
        assert image["decoded"] and image["w"] > 200 and image["h"] > 150, image
    tables = {t["cls"]: t for t in found["tables"]}
    assert tables["leaderboard"]["rows"] == 1 + 6 and tables["leaderboard"]["h"] > 100
    assert tables["paired"]["rows"] == 2 and tables["paired"]["w"] > 300
    assert "Environment: torch 2.4.1" in done.stdout

    shot = tmp_path / "report.png"
    taken = chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", report.as_uri())
    assert console(taken.stderr) == []
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (1600, 1280)
    ink = (pixels < 0.9).any(axis=-1)
    assert 0.03 < ink.mean() < 0.6  # text, rules and figures on a white page: neither blank nor a solid fill
    assert ink[: 1600 // 3].mean() > 0.01 and ink[1600 // 2:].mean() > 0.01  # the tables at the top, figures below
    assert len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 50  # the figures' colours
