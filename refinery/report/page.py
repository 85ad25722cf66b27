"""One self-contained HTML page from the report's numbers: inline CSS, figures as data URIs, the
numbers also as tables and as a JSON block (``#numbers``) for anyone who wants to check them."""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone

import pandas as pd

from refinery.report import plots
from refinery.report.collect import ReportData

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; } th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 8px; }
img { max-width: 100%; } .note { color: #666; }
"""
# Counts the figures that decoded: a headless browser (the tests) reads it back from the DOM.
CHECK = """
window.addEventListener("load", () => {
  const images = [...document.images];
  const drawn = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.images = `${drawn}/${images.length}`;
});
"""


def cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="n">{value:,.1f}</td>'
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table(frame: pd.DataFrame, table_id: str, index: bool = False) -> str:
    frame = frame.reset_index() if index else frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(cell(v.item() if hasattr(v, "item") else v) for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def figure(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def render(data: ReportData, title: str, run_id: str) -> str:
    stages = data.stages.drop(columns=["outputs"]).assign(
        tables=[", ".join(f"{k}@v{v}" for k, v in sorted(o.items())) for o in data.stages["outputs"]])
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="note">run {html.escape(run_id)}, written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. '
             "Each stage's line is its latest recorded run; in = kept + dropped + rejected. Pin a table for training "
             "with <code>versionAsOf</code> and the version shown.</p>",
             "<h2>Funnel per stage</h2>", table(stages, "stages")]
    if len(data.stages):
        parts.append(figure(plots.funnel(data.stages), "funnel per stage"))
    if len(data.sources):
        parts += ["<h2>Funnel per source</h2>", table(data.sources, "sources", index=True),
                  figure(plots.source_funnel(data.sources), "funnel per source")]
    parts.append("<h2>Why records were dropped</h2>")
    if len(data.reasons):
        parts += [table(data.reasons, "reasons"), figure(plots.reasons(data.reasons, "drops by reason"), "drop reasons")]
    else:
        parts.append('<p class="note">no drops recorded</p>')
    parts += ["<h3>Rejected (unusable input)</h3>",
              table(data.rejects, "rejects") if len(data.rejects) else '<p class="note">no rejects</p>']
    if data.signals is not None and len(data.signals):
        kept = data.signals["kept"].astype(bool)
        parts += [f"<h2>Quality signals</h2><p class='note'>{len(data.signals):,} documents of the filtered kinds sampled; "
                  "dashed lines are the thresholds in force (per-source overrides aside).</p><div class='grid'>"]
        parts += [figure(plots.signal_histogram(data.signals[s], kept, s, bounds), s)
                  for s, bounds in data.thresholds.items() if s in data.signals]
        parts.append("</div>")
    if data.perplexity is not None and len(data.perplexity):
        parts += ["<h2>Perplexity</h2>", figure(plots.perplexity(data.perplexity), "perplexity by bucket")]
    if data.cluster_sizes is not None and len(data.cluster_sizes):
        parts += ["<h2>Duplicate clusters</h2>", table(data.cluster_sizes, "clusters"),
                  figure(plots.cluster_sizes(data.cluster_sizes), "duplicate cluster sizes")]
    if data.embeddings is not None:
        parts += ["<h2>Embedding map</h2>", figure(plots.embedding_map(data.embeddings), "embedding map")]
    if data.selected is not None and len(data.selected):
        parts += ["<h2>Selected subset vs pool</h2>", table(data.selected, "selected"),
                  figure(plots.selected_vs_pool(data.selected), "selected vs pool")]
    numbers = {"stages": data.stages.drop(columns=["outputs"]).to_dict("records"),
               "sources": data.sources.reset_index().to_dict("records"),
               "reasons": data.reasons.to_dict("records")}
    payload = json.dumps(numbers, default=str).replace("</", "<\\/")  # no "</script>" inside the block
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts)
            + f"<script type='application/json' id='numbers'>{payload}</script>"
            + f"<script>{CHECK}</script></body></html>")
