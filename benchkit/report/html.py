"""A run as one self-contained HTML page: leaderboard, paired comparisons, figures (SVG embedded as data URIs),
incomplete cells with their errors, and the environment. No server, no external asset: open the file anywhere.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from benchkit.report.figures import Plot, figure_bytes
from benchkit.report.leaderboard import Table, render
from benchkit.report.results import RunResults

STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; }
.meta { color: #57606a; font-size: .9rem; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: #57606a; font-size: .9rem; padding-bottom: .4rem; }
th, td { padding: .25rem .7rem; text-align: left; white-space: nowrap; }
th.num, td.num { text-align: right; }
thead th { border-top: 2px solid #1b1f24; border-bottom: 1px solid #1b1f24; }
tbody + tbody { border-top: 1px solid #8c959f; }
table > tbody:last-of-type { border-bottom: 2px solid #1b1f24; }
tbody.baselines { color: #57606a; }
tr.incomplete td { background: #fff8c5; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #57606a; font-size: .9rem; }
code { background: #f6f8fa; padding: 0 .25rem; }
"""


def _data_uri(plot: Plot) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(figure_bytes(plot.figure, "svg")).decode("ascii")


def _environment(env: dict) -> str:
    if not env:
        return ""
    parts = [f"benchkit {env.get('benchkit', '?')}"]
    if env.get("git_commit"):
        parts.append(f"commit {env['git_commit'][:10]}{' (dirty)' if env.get('git_dirty') else ''}")
    parts += [f"{k} {env[k]}" for k in ("device_name", "started") if env.get(k)]
    return " · ".join(parts)


def _failures(results: RunResults) -> list[str]:
    out = []
    for cell in results.cells:
        missing = results.folds - len(cell.folds)
        if not missing:
            continue
        errors = []
        for k in cell.failed:
            error = results.store.load_error(cell.folder, k) or {}
            errors.append(f"fold {k}: {error.get('type', 'error')}: {error.get('message', '')}")
        detail = "; ".join(errors) or "not run yet"
        out.append(f"<li><code>{html.escape(cell.key)}</code> {html.escape(cell.name())}: "
                   f"{len(cell.folds)}/{results.folds} folds stored; {html.escape(detail)}</li>")
    return out


def render_html(results: RunResults, table: Table, plots: Sequence[Plot] = (), comparisons: str = "") -> str:
    """The report page. ``comparisons``: an HTML fragment from ``render_comparisons(..., "html")``."""
    title = html.escape(table.title)
    body = [f"<h1>{title}</h1>"]
    if table.description:
        body.append(f"<p>{html.escape(table.description)}</p>")
    meta = [f"{len(results.cells)} cells × {results.folds} {table.splits}"]
    if results.merged:
        meta.append(f"{len(results.sources)} run directories merged")
        envs = [f"{s.name} ({s.root}): {_environment(s.environment) or 'no environment.json'}" for s in results.sources]
    else:
        meta.append(f"run directory {results.root}")
        envs = [e] if (e := _environment(results.sources[0].environment if results.sources else {})) else []
    lines = [html.escape(" · ".join(meta)), *(html.escape(e) for e in envs)]
    body.append(f'<p class="meta">{"<br>".join(lines)}</p>')
    body += ["<h2>Leaderboard</h2>", render(table, "html")]
    if comparisons:
        body += ["<h2>Paired comparisons</h2>", comparisons]
    if plots:
        body.append("<h2>Figures</h2>")
        for p in plots:
            body.append(f'<figure id="{html.escape(p.name)}"><img src="{_data_uri(p)}" alt="{html.escape(p.name)}">'
                        f"<figcaption>{html.escape(p.caption)}</figcaption></figure>")
    failures = _failures(results)
    if failures:
        body += ["<h2>Incomplete cells</h2>", "<ul>", *failures, "</ul>"]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title} · benchkit report</title>", f"<style>{STYLE}</style>", "</head>", "<body>", *body,
        "</body>", "</html>",
    ]) + "\n"
