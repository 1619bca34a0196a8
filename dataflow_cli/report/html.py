"""Render the run report model (`report.model`) as one self-contained HTML page.

No script, no network: inline CSS and inline SVG only, and a Content-Security-Policy that
forbids scripts and remote loads, so the page is safe to open even though it quotes row text
(model output, scraped documents) that must be treated as hostile. Every value goes through
`_e` (HTML escaping); the CSP is the second wall. Narrow screens get one column and tables
that scroll sideways instead of a page that does.
"""

from __future__ import annotations

import html
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root{--fg:#1d2330;--muted:#5b6474;--line:#dde2ea;--bg:#fff;--panel:#f6f8fb;--accent:#2f6fdb;
--keep:#2e9d5b;--drop:#d1493f;--warn:#b7791f}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);-webkit-text-size-adjust:100%}
main{max-width:1040px;margin:0 auto;padding:16px}
h1{font-size:1.45rem;margin:.2em 0}
h2{font-size:1.1rem;margin:1.6em 0 .5em;padding-bottom:.25em;border-bottom:1px solid var(--line)}
h3{font-size:.95rem;margin:.8em 0 .3em}
p{margin:.4em 0}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8rem;background:var(--panel);
border:1px solid var(--line)}
.badge.ok{color:var(--keep);border-color:var(--keep)}
.badge.bad{color:var(--drop);border-color:var(--drop)}
.badge.warn{color:var(--warn);border-color:var(--warn)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:8px;margin:12px 0}
.kpi{background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:8px 10px}
.kpi b{display:block;font-size:1.3rem}
.kpi span{color:var(--muted);font-size:.8rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:.88rem}
th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--panel);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.bar{min-width:120px;width:30%}
.track{background:var(--panel);border-radius:3px;height:12px;position:relative;overflow:hidden}
.fill{background:var(--keep);height:12px}
.fill.drop{background:var(--drop)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px;background:var(--bg);min-width:0}
.card svg{width:100%;height:auto;display:block}
.banner{border:1px solid var(--drop);background:#fdf1f0;border-radius:8px;padding:10px;margin:12px 0}
.row{border:1px solid var(--line);border-radius:8px;margin:8px 0;overflow:hidden}
.row header{background:var(--panel);padding:6px 10px;font-size:.85rem}
.row dl{margin:0;padding:6px 10px;display:grid;grid-template-columns:minmax(90px,max-content) 1fr;gap:2px 12px}
.row dt{color:var(--muted);font-size:.82rem;overflow-wrap:anywhere}
.row dd{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;font-size:.86rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;overflow-wrap:anywhere}
footer{margin:2em 0 1em;color:var(--muted);font-size:.8rem;overflow-wrap:anywhere}
@media (max-width:600px){main{padding:10px}h1{font-size:1.25rem}.grid{grid-template-columns:1fr}
td.bar{min-width:50px}th,td{padding:4px 5px}
.row dl{grid-template-columns:1fr}.row dt{margin-top:4px}}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else _e(value)


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return _e(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _n(value: Any, text: str | None = None, key: str | None = None) -> str:
    """A numeric cell that keeps the exact value in `data-value` (tests and tools read it)."""
    named = f' data-key="{key}"' if key else ""
    return f'<td class="n"{named} data-value="{_e(value)}">{text if text is not None else _int(value)}</td>'


def render_html(model: dict[str, Any]) -> str:
    run = model["run"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>dataflow report: {_e(run['name'])}</title>",
        f"<style>{CSS}</style></head><body><main>",
        _header(model),
        _stopped(model.get("stopped_by")),
        _budget(model.get("budget")),
        _funnel(model["funnel"]),
        _drops(model["drops"]),
        _gates(model["gates"], model.get("gates_note")),
        _scores(model),
        _llm(model["llm"]),
        _slowest(model["slowest"]),
        _samples(model["samples"]),
        f"<footer>Report generated {_e(model['generated_at'])} from <code>{_e(run['run_dir'])}/stats.json</code>"
        f" by dataflow ({_e(model['format'])}).</footer>",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _header(model: dict[str, Any]) -> str:
    run = model["run"]
    status = run.get("status") or "unknown"
    cls = "ok" if status == "complete" and not model.get("stopped_by") else "warn"
    kpis = [
        ("rows_read", "rows read"),
        ("rows_written", "rows written"),
        ("rows_rejected", "rows rejected"),
        ("rows_added_by_fanout", "added by fan-out"),
    ]
    cards = "".join(
        f'<div class="kpi" id="kpi-{key}"><b data-value="{_e(run.get(key))}">{_int(run.get(key))}</b>'
        f"<span>{label}</span></div>"
        for key, label in kpis
    )
    cards += (
        f'<div class="kpi"><b>{_num(run.get("seconds"))} s</b><span>wall time '
        f"({_num(run.get('rows_per_second'), 1)} rows/s)</span></div>"
    )
    cost = sum(s.get("cost") or 0.0 for s in model["llm"])
    if model["llm"]:
        tokens = sum(s["prompt_tokens"] + s["completion_tokens"] for s in model["llm"])
        cards += f'<div class="kpi"><b>{tokens:,}</b><span>tokens (${cost:.4f})</span></div>'
    description = f'<p class="muted">{_e(run["description"])}</p>' if run.get("description") else ""
    if status == "complete":
        output = run.get("output") or "none (no row kept)"
        rejects = run.get("rejects") or "none (no row rejected)"
    else:  # a failed or stopped run commits neither file
        output = rejects = f"not written (the run is {status})"
    files = (
        f"<p>Output: <code>{_e(output)}</code><br>Rejects: <code>{_e(rejects)}</code><br>"
        f"Spec: <code>{_e(run.get('spec'))}</code></p>"
    )
    return (
        f'<header><h1>{_e(run["name"])} <span class="badge {cls}">{_e(status)}</span></h1>'
        f'{description}</header><div class="kpis">{cards}</div>{files}'
    )


def _stopped(stopped: dict[str, Any] | None) -> str:
    if not stopped:
        return ""
    return (
        '<div class="banner" id="stopped-by"><b>Stopped by a budget cap</b>: '
        f"<code>{_e(stopped.get('cap'))}</code> limit {_e(stopped.get('limit'))}, spent {_e(stopped.get('spent'))}. "
        f"{_e(stopped.get('message'))}</div>"
    )


def _budget(budget: dict[str, Any] | None) -> str:
    if not budget or not budget.get("limits"):
        return ""
    spent, left = budget.get("spent") or {}, budget.get("left") or {}
    names = {"max_usd": "usd", "max_tokens": "tokens", "max_requests": "requests"}
    rows = "".join(
        f'<tr><td>{_e(cap)}</td><td class="n">{_num(limit, 4)}</td>'
        f'<td class="n">{_num(spent.get(names.get(cap, cap)), 4)}</td><td class="n">{_num(left.get(cap), 4)}</td></tr>'
        for cap, limit in budget["limits"].items()
    )
    return (
        '<section id="budget"><h2>Budget</h2><div class="scroll"><table><thead><tr><th>cap</th>'
        '<th class="n">limit</th><th class="n">spent</th><th class="n">left</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _bar(part: int, whole: int, cls: str = "") -> str:
    width = 100.0 * part / whole if whole else 0.0
    return f'<div class="track"><div class="fill {cls}" style="width:{width:.1f}%"></div></div>'


def _funnel(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    top = max([r["rows_in"] for r in rows] + [r["rows_out"] for r in rows] + [1])
    body = "".join(
        f'<tr data-stage="{_e(r["stage"])}"><td>{_e(r["stage"])}</td>'
        + _n(r["rows_in"])
        + _n(r["rows_out"])
        + _n(r["rows_dropped"])
        + f'<td class="n">{_pct(r["keep_ratio"])}</td>'
        f'<td class="bar">{_bar(r["rows_out"], top)}</td><td>{_e(r["kind"])}</td>'
        f'<td class="muted">{_e(r["op"])}</td></tr>'
        for r in rows
    )
    # Numbers first: on a phone they are what shows before the table scrolls.
    return (
        '<section id="funnel"><h2>Rows per stage</h2><div class="scroll"><table>'
        '<thead><tr><th>stage</th><th class="n">rows in</th><th class="n">rows out</th>'
        '<th class="n">dropped</th><th class="n">kept</th><th>rows out</th><th>kind</th><th>operator</th>'
        "</tr></thead>"
        f"<tbody>{body}</tbody></table></div></section>"
    )


def _drops(drops: list[dict[str, Any]]) -> str:
    if not drops:
        return (
            '<section id="drops"><h2>Drop reasons</h2><p class="muted">No stage dropped a row.</p></section>'
        )
    blocks = []
    for d in drops:
        rows = "".join(
            f"<tr><td>{_e(r['reason'])}</td>{_n(r['count'])}"
            f'<td class="bar">{_bar(r["count"], d["rows_in"], "drop")}</td></tr>'
            for r in d["reasons"]
        )
        blocks.append(
            f'<h3>{_e(d["stage"])} <span class="muted">– {d["rows_dropped"]:,} of {d["rows_in"]:,} rows</span></h3>'
            f'<div class="scroll"><table data-stage="{_e(d["stage"])}"><thead><tr><th>reason</th>'
            f'<th class="n">rows</th><th>share of rows in</th></tr></thead><tbody>{rows}</tbody></table></div>'
        )
    return '<section id="drops"><h2>Drop reasons</h2>' + "".join(blocks) + "</section>"


def _gates(gates: list[dict[str, Any]], note: str | None) -> str:
    if note:
        return f'<section id="gates"><h2>Quality gates</h2><p class="muted">{_e(note)}</p></section>'
    if not gates:
        return (
            '<section id="gates"><h2>Quality gates</h2><p class="muted">No gates defined '
            "(<code>expect:</code> on a stage).</p></section>"
        )
    rows = "".join(
        f'<tr><td>{_e(g.get("stage"))}</td><td>{_e(g.get("check"))}</td><td class="n">{_e(g.get("observed"))}</td>'
        f"<td>{_e(g.get('expected'))}</td>"
        f'<td><span class="badge {"ok" if g.get("passed") else "bad"}">{"passed" if g.get("passed") else "failed"}'
        f"</span></td><td>{_e(g.get('on_fail'))}</td><td>{_e(g.get('message'))}</td></tr>"
        for g in gates
    )
    return (
        '<section id="gates"><h2>Quality gates</h2><div class="scroll"><table><thead><tr><th>stage</th>'
        '<th>check</th><th class="n">observed</th><th>expected</th><th>result</th><th>on fail</th>'
        f"<th>message</th></tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def histogram_svg(profile: dict[str, Any]) -> str:
    """Bars of a profile's histogram, with its range and median marked; no script, no fonts."""
    hist = profile.get("histogram") or {}
    edges, counts = hist.get("edges") or [], hist.get("counts") or []
    if not counts or len(edges) != len(counts) + 1:
        return '<p class="muted">no histogram in the stats</p>'
    width, height, pad = 320, 120, 18
    top = max(counts) or 1
    bar_w = (width - 2) / len(counts)
    bars = "".join(
        f'<rect x="{1 + i * bar_w:.2f}" y="{pad + (height - 2 * pad) * (1 - c / top):.2f}" '
        f'width="{max(bar_w - 1, 0.5):.2f}" height="{(height - 2 * pad) * c / top:.2f}" fill="#2f6fdb">'
        f"<title>{_e(_fmt(edges[i]))} – {_e(_fmt(edges[i + 1]))}: {c:,}</title></rect>"
        for i, c in enumerate(counts)
    )
    marker = ""
    p50 = (profile.get("quantiles") or {}).get("p50")
    lo, hi = edges[0], edges[-1]
    if isinstance(p50, (int, float)) and hi > lo:
        x = 1 + (width - 2) * (p50 - lo) / (hi - lo)
        marker = (
            f'<line x1="{x:.2f}" x2="{x:.2f}" y1="{pad - 4}" y2="{height - pad}" stroke="#d1493f" '
            f'stroke-dasharray="3 2"/><text x="{min(max(x, 20), width - 40):.2f}" y="{pad - 6}" '
            f'font-size="10" fill="#d1493f">p50 {_e(_fmt(p50))}</text>'
        )
    axis = (
        f'<line x1="0" x2="{width}" y1="{height - pad}" y2="{height - pad}" stroke="#8a93a3"/>'
        f'<text x="1" y="{height - 4}" font-size="10" fill="#5b6474">{_e(_fmt(lo))}</text>'
        f'<text x="{width - 1}" y="{height - 4}" font-size="10" fill="#5b6474" text-anchor="end">'
        f"{_e(_fmt(hi))}</text>"
    )
    label = f"histogram of {profile.get('column')}: {sum(counts):,} values from {_fmt(lo)} to {_fmt(hi)}"
    return (
        # No xmlns: inline SVG in HTML needs none, and the page then holds no URL at all.
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_e(label)}">{bars}{axis}{marker}</svg>'
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _scores(model: dict[str, Any]) -> str:
    note = model.get("profiles_note")
    head = '<section id="scores"><h2>Score distributions</h2>'
    if note:
        return f'{head}<p class="muted">{_e(note)}</p></section>'
    cards = []
    for p in model["scores"]:
        q = p.get("quantiles") or {}
        stats = (
            f"n {_int(p.get('count'))}, nulls {_int(p.get('nulls'))}, mean {_num(p.get('mean'))}, "
            f"min {_num(p.get('min'))}, p25 {_num(q.get('p25'))}, p50 {_num(q.get('p50'))}, "
            f"p75 {_num(q.get('p75'))}, max {_num(p.get('max'))}"
        )
        cards.append(
            f'<div class="card" data-column="{_e(p["column"])}"><h3>{_e(p["column"])} '
            f'<span class="muted">({_e(p["stage"])}, {_e(p["kind"])})</span></h3>'
            f'{histogram_svg(p)}<p class="muted">{stats}</p></div>'
        )
    body = (
        f'<div class="grid">{"".join(cards)}</div>' if cards else '<p class="muted">No numeric columns.</p>'
    )
    rates = ""
    if model["pass_rates"]:
        rows = "".join(
            f"<tr><td>{_e(r['stage'])}</td><td>{_e(r['column'])}</td>{_n(r['true'])}{_n(r['known'])}"
            f'<td class="n">{_pct(r["rate"])}</td><td class="bar">{_bar(r["true"], r["known"])}</td></tr>'
            for r in model["pass_rates"]
        )
        rates = (
            '<h3>Pass rates (boolean verdicts)</h3><div class="scroll"><table><thead><tr><th>stage</th>'
            '<th>column</th><th class="n">true</th><th class="n">known</th><th class="n">rate</th><th></th>'
            f"</tr></thead><tbody>{rows}</tbody></table></div>"
        )
    return f"{head}{body}{rates}</section>"


def _llm(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<section id="llm"><h2>Model calls</h2><p class="muted">No stage called a model.</p></section>'
    body = ""
    for r in rows:
        latency = ", ".join(f"{k} {_num(v, 3)}" for k, v in r["latency"].items()) or "–"
        cells = "".join(
            _n(r[key], None, key) for key in ("requests", "cache_hits", "prompt_tokens", "completion_tokens")
        )
        body += (
            f'<tr data-stage="{_e(r["stage"])}"><td>{_e(r["stage"])}</td>{cells}'
            + _n(r["cost"], f"${r['cost']:.4f}", "cost")
            + f'<td class="n">{_pct(r["cache_hit_rate"])}</td>'
            + "".join(_n(r[key], None, key) for key in ("calls", "retries", "errors"))
            + f'<td class="n">{_num(r["seconds_per_call"], 3)}</td><td>{latency}</td></tr>'
        )
    # Tokens and cost first: on a phone they are what shows before the table scrolls.
    return (
        '<section id="llm"><h2>Model calls</h2><div class="scroll"><table><thead><tr><th>stage</th>'
        '<th class="n">requests</th><th class="n">cache hits</th><th class="n">prompt tokens</th>'
        '<th class="n">completion tokens</th><th class="n">cost</th><th class="n">hit rate</th>'
        '<th class="n">calls</th><th class="n">retries</th><th class="n">errors</th>'
        '<th class="n">stage s / call</th>'
        f"<th>latency</th></tr></thead><tbody>{body}</tbody></table></div>"
        '<p class="muted">Stage s / call: the stage\'s compute time divided by backend calls; with '
        "concurrent requests it is lower than the latency of one request.</p></section>"
    )


def _slowest(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{_e(r['stage'])}</td>"
        + _n(r["seconds"], _num(r["seconds"], 3))
        + f'<td class="n">{_pct(r["share"])}</td><td class="bar">{_bar(int(1000 * (r["share"] or 0)), 1000)}</td>'
        + _n(r["batches_reused"])
        + f'<td class="muted">{_e(r["op"])}</td></tr>'
        for r in rows
    )
    return (
        '<section id="slowest"><h2>Slowest stages</h2><div class="scroll"><table><thead><tr><th>stage</th>'
        '<th class="n">seconds</th><th class="n">share</th><th></th><th class="n">batches reused</th>'
        f"<th>operator</th></tr></thead><tbody>{body}</tbody></table></div>"
        '<p class="muted">Compute time; batches replayed from checkpoints cost none.</p></section>'
    )


def _row_block(row: dict[str, Any], rejected: bool) -> str:
    head = ""
    if rejected:
        head = f"<header><b>{_e(row.get('stage'))}</b>: {_e(row.get('reason'))}"
        for key in ("detail", "failed"):
            if row.get(key):
                head += f'<br><span class="muted">{key}: {_e(row[key])}</span>'
        head += "</header>"
    cells = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in row["cells"].items())
    if rejected and row.get("raw"):
        cells += f"<dt>raw model answer</dt><dd>{_e(row['raw'])}</dd>"
    return f'<div class="row {"rejected" if rejected else "kept"}">{head}<dl>{cells}</dl></div>'


def _samples(samples: dict[str, Any]) -> str:
    notes = "".join(f'<p class="muted">{_e(n)}</p>' for n in samples.get("notes", []))
    kept = "".join(_row_block(r, False) for r in samples["kept"]) or '<p class="muted">No kept rows.</p>'
    rejected = (
        "".join(_row_block(r, True) for r in samples["rejected"]) or '<p class="muted">No rejected rows.</p>'
    )
    return (
        '<section id="samples"><h2>Sample rows</h2>'
        f"{notes}<h3>Kept (first rows of the output)</h3>{kept}"
        f"<h3>Rejected (a few per stage and reason)</h3>{rejected}"
        '<p class="muted">Cells are cut to a few hundred characters.</p></section>'
    )
