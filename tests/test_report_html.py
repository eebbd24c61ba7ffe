"""The HTML report (self-contained: leaderboard, comparisons, embedded figures, failures) and `benchkit report`'s
options, on synthetic run directories and on one real tiny run."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from click.testing import CliRunner
from report_runs import cell, write_run

from benchkit.cli import main
from benchkit.report.run_report import ReportOptions, RunReport

VOID = {"meta", "br", "img", "link", "hr", "input"}


class Checker(HTMLParser):
    """Fails on mis-nested tags; collects every tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def parse(text: str) -> Checker:
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert checker.stack == []
    return checker


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def demo_run(tmp_path):
    return write_run(tmp_path / "run", [
        cell("dino-mean", {"accuracy": [40, 41, 42]}, backbone="DINOv2", aggregator="Mean"),
        cell("dino-inv", {"accuracy": [90, 91, 92]}, backbone="DINOv2", aggregator="InvPatch",
             profile={"gflops": 54.0, "latency_ms": 41.8}),
        cell("mae-inv", {"accuracy": [95, 96, 97]}, backbone="VideoMAE", aggregator="InvPatch",
             profile={"gflops": 54.0, "latency_ms": 40.0}),
        cell("mae-lstm", {"accuracy": [93, 94, None]}, backbone="VideoMAE", aggregator="LSTM", failed=[2]),
    ])


def test_html_report_is_self_contained(tmp_path):
    rep = RunReport(demo_run(tmp_path), ReportOptions(compare=[("mae-inv", "dino-inv")]))
    text = rep.text("html")
    page = parse(text)
    tags = [t for t, _ in page.tags]
    assert tags[:2] == ["html", "head"] and "script" not in tags and "link" not in tags
    assert '<table class="leaderboard">' in text and '<table class="paired">' in text
    assert "<strong><u>96.00 ± 2.48</u></strong>" in text and "<strong>91.00 ± 2.48</strong>" in text
    images = [a for t, a in page.tags if t == "img"]
    assert {a["alt"] for a in images} == {"confusion-world-mae-inv", "cost-world"}
    for a in images:
        prefix = "data:image/svg+xml;base64,"
        assert a["src"].startswith(prefix)
        svg = ET.fromstring(base64.b64decode(a["src"][len(prefix):]))
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert not re.search(r'(src|href)="(?!data:|#)', text)  # nothing to fetch
    assert "Incomplete cells" in text and "mae-lstm" in text and "RuntimeError: boom in fold 2" in text
    assert "<tr class=incomplete" in text and "2/3 (1 failed)" in text
    assert "<td class=num>5.00 ± 0.00</td>" in text  # the paired difference mae-inv - dino-inv: 5 on every fold


def test_report_all_formats_to_a_directory(tmp_path):
    run = demo_run(tmp_path)
    code, out, err = invoke("report", run, "--format", "all", "--columns", "gflops",
                            "--compare", "backbone=VideoMAE,aggregator=InvPatch", "dino-inv")
    assert code == 0, err
    target = run / "report"
    written = out.split()
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.tex", "report.html", "paired.csv"):
        assert str(target / name) in written
    figures = sorted(p.name for p in (target / "figures").iterdir())
    assert figures == ["confusion-world-mae-inv.png", "confusion-world-mae-inv.svg", "cost-world.png",
                       "cost-world.svg"]
    md = (target / "leaderboard.md").read_text()
    assert "| GFLOPs |" in md and "**Paired comparisons**" in md
    assert (target / "leaderboard.csv").read_text().splitlines()[0].endswith(",gflops")
    assert r"\toprule" in (target / "leaderboard.tex").read_text()
    assert (target / "paired.csv").read_text().splitlines()[1].startswith("mae-inv,dino-inv,accuracy,96,91,5,0,")


def test_report_options_to_stdout_and_file(tmp_path):
    run = demo_run(tmp_path)
    code, md, _ = invoke("report", run, "--group-by", "none", "--rows", "aggregator,backbone")
    assert code == 0 and "<ins>" not in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Aggregator | Backbone | accuracy ↑ |")  # level does not vary: no column
    assert [r.split("|")[1].strip() for r in rows[1:5]] == ["Mean", "InvPatch", "", "LSTM"]
    assert not (run / "report").exists()  # a text format to stdout writes no files

    code, _, _ = invoke("report", run, "--format", "html", "-o", tmp_path / "r.html", "--no-figures")
    assert code == 0 and "<img" not in (tmp_path / "r.html").read_text()
    code, out, err = invoke("report", run, "--format", "md", "--figure", "cost")
    assert code == 0 and "| Level |" in out and err.strip().endswith("cost-world.svg")


def test_report_mistakes_are_one_line(tmp_path):
    run = demo_run(tmp_path)
    for args, message in [
        (("--compare", "aggregator=InvPatch", "dino-mean"), "matches 2 cells"),
        (("--compare", "nothing", "dino-mean"), "matches no cell"),
        (("--rows", "embedding"), "unknown report column 'embedding'"),
        (("--columns", "aggregator,flops"), "unknown report column 'flops'"),
        (("--format", "all", "-o", tmp_path / "x"), "--output writes one format"),
        (("--metric", "bleu", "--figures"), "unknown metric 'bleu'"),
    ]:
        code, _, err = invoke("report", run, *args)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, (args, err)


def test_report_of_a_real_tiny_run(tmp_path, write_grid, tiny_grid):
    run = tmp_path / "real"
    code, _, err = invoke("run", write_grid(tiny_grid), "--run-dir", run, "--no-progress")
    assert code == 0, err
    code, _, err = invoke("report", run, "--format", "all", "--compare", "level=frame", "level=patch")
    assert code == 0, err
    html = (run / "report" / "report.html").read_text()
    parse(html)
    assert html.count("<img") == 1 and "Paired comparisons" in html
    confusion = [p for p in (run / "report" / "figures").iterdir() if p.name.startswith("confusion-")]
    assert sorted(p.suffix for p in confusion) == [".png", ".svg"]
    assert (run / "report" / "leaderboard.md").read_text().startswith((run / "leaderboard.md").read_text())
