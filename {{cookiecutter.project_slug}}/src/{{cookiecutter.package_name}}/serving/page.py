"""The page ``serve`` answers on ``GET /``: type a text, see the label and a bar per label score.

For a multi-label model the page shows every decided label ("no label" when none) and marks
each label's threshold on its bar: a label is decided when its score reaches its threshold, the
rule the handlers apply (the thresholds come from the model's config.json, see ``render_page``).
For a model trained on text pairs the page has two text boxes, labelled with the data columns
the model was trained on, and sends ``{"text": ..., "text_pair": ...}``.

Self-contained (no CDN, no build step), so it works offline and behind a firewall. It calls
``POST /invocations`` like any client, so what it shows is what the endpoint answers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Text classifier</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, "Apple SD Gothic Neo", "Malgun Gothic", "Noto Sans KR", sans-serif;
         max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1f2328; }
  textarea { width: 100%; min-height: 6rem; font: inherit; padding: .5rem; box-sizing: border-box; }
  button { font: inherit; padding: .4rem 1.2rem; margin-top: .5rem; }
  #predicted { font-size: 1.4rem; font-weight: 600; min-height: 1.8rem; }
  .bar { display: grid; grid-template-columns: 10rem 1fr 4.5rem; gap: .5rem; align-items: center;
         margin: .3rem 0; }
  .track { background: #eaeef2; border-radius: 3px; height: 1.1rem; }
  .fill { background: #0969da; border-radius: 3px; height: 100%; }
  .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .value { text-align: right; font-variant-numeric: tabular-nums; }
  .sets .bar { grid-template-columns: 10rem 1fr 4.5rem 8rem; }
  .track { position: relative; }
  .mark { position: absolute; top: -.15rem; bottom: -.15rem; width: 2px; background: #1f2328; }
  .sets .bar:not(.decided) .fill { background: #8c959f; }
  .threshold { color: #6e7781; font-size: .85rem; font-variant-numeric: tabular-nums; white-space: nowrap; }
  #status { color: #6e7781; min-height: 1.2rem; }
  #status.error { color: #cf222e; }
  footer { margin-top: 2rem; color: #6e7781; font-size: .85rem; }
</style>
</head>
<body>
<h1>Text classifier</h1>
<label for="text" id="text-label">Text to classify</label>
<textarea id="text" autofocus></textarea>
<div id="pair-box" hidden>
<label for="text-pair" id="text-pair-label"></label>
<textarea id="text-pair"></textarea>
</div>
<button id="classify" type="button">Classify</button>
<p id="status" role="status"></p>
<p id="predicted" aria-live="polite"></p>
<div id="scores"></div>
<footer>Model <span id="version"></span> &middot; labels: <span id="labels"></span> &middot;
max <span id="max-length"></span> tokens per text &middot; <code>POST /invocations</code></footer>
<script type="application/json" id="model-info">__MODEL_INFO__</script>
<script>
"use strict";
const info = JSON.parse(document.getElementById("model-info").textContent);
const $ = (id) => document.getElementById(id);
$("version").textContent = info.version;
$("labels").textContent = info.labels.join(", ");
$("max-length").textContent = String(info.max_length);
// A pair model: one box per text, named as the columns the model was trained on.
const pairColumns = info.pair_columns;
if (pairColumns) {
  $("text-label").textContent = pairColumns[0];
  $("text-pair-label").textContent = pairColumns[1];
  $("pair-box").hidden = false;
}

const element = (tag, className, text = "") =>
  Object.assign(document.createElement(tag), {className, textContent: text});

const asPercent = (value) => (100 * value).toFixed(1) + "%";

function show(answer) {
  // top_k null: every label, best first, as {label, score}.
  const thresholds = info.thresholds;
  // Multi-label: every label whose score reaches its threshold, as the handlers decide.
  const decided = thresholds ? answer.filter((item) => item.score >= thresholds[item.label]) : [answer[0]];
  $("predicted").textContent = decided.length ? decided.map((item) => item.label).join(", ") : "no label";
  $("scores").classList.toggle("sets", Boolean(thresholds));
  $("scores").replaceChildren(...answer.map((item) => {
    const row = element("div", decided.includes(item) ? "bar decided" : "bar");
    Object.assign(row.dataset, {label: item.label, score: String(item.score)});
    const track = element("div", "track");
    const fill = element("div", "fill");
    fill.style.width = asPercent(item.score);
    track.append(fill);
    row.append(element("span", "name", item.label), track, element("span", "value", asPercent(item.score)));
    if (thresholds) {
      const threshold = thresholds[item.label];
      row.dataset.threshold = String(threshold);
      const mark = element("div", "mark");
      mark.style.left = asPercent(threshold);
      track.append(mark);
      row.append(element("span", "threshold", "threshold " + asPercent(threshold)));
    }
    return row;
  }));
}

async function classify() {
  const text = $("text").value;
  const pair = $("text-pair").value;
  const status = $("status");
  status.className = "";
  if (!text.trim() || (pairColumns && !pair.trim())) {
    status.textContent = pairColumns ? "Type both texts first." : "Type a text first.";
    return;
  }
  const inputs = pairColumns ? {text: text, text_pair: pair} : text;
  status.textContent = "Classifying...";
  $("classify").disabled = true;
  try {
    const response = await fetch("invocations", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({inputs: inputs, parameters: {top_k: null}}),
    });
    const answer = await response.json();
    if (!response.ok) {
      throw new Error(answer.message || response.statusText);
    }
    show(answer);
    status.textContent = "";
  } catch (error) {
    status.className = "error";
    status.textContent = "Error: " + error.message;
  } finally {
    $("classify").disabled = false;
  }
}

$("classify").addEventListener("click", classify);
for (const box of [$("text"), $("text-pair")]) {
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) classify();
  });
}
</script>
</body>
</html>
"""


def render_page(
    labels: Sequence[str],
    version: str,
    max_length: int,
    thresholds: Sequence[float] | None = None,
    pair_columns: Sequence[str] | None = None,
) -> bytes:
    """The page with the model's labels and version (escaped for a <script> element);
    ``thresholds`` (per label, a multi-label model's) make it show the decided labels;
    ``pair_columns`` (a text-pair model's two data columns) give it a box per text."""
    by_label = None if thresholds is None else dict(zip(labels, thresholds, strict=True))
    info = json.dumps(
        {
            "labels": list(labels),
            "version": version,
            "max_length": max_length,
            "thresholds": by_label,
            "pair_columns": list(pair_columns) if pair_columns else None,
        },
        ensure_ascii=False,
    )
    # "</script>" or "<!--" inside a label must not end the element: escape the characters.
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        info = info.replace(raw, escaped)
    return _PAGE.replace("__MODEL_INFO__", info).encode("utf-8")
