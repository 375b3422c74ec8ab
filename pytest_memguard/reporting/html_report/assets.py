"""The report page's inline style and script (no file, font or address outside the page).

The script draws the table of tests from its JSON columns (:mod:`.table`), only the rows
in view, and sorts and filters it.  The page's address fragment sets the same state, so
a link can show a view and a test can drive the page without a browser protocol:
``#sort=peak&dir=desc&q=leak&status=leak&outcome=failed`` (a malformed escape is read as
it stands, an unknown key or value is ignored).  ``data-rows`` on ``<body>`` counts the
rows drawn.  An error in any script of the
page is written into the page itself (``data-js-error`` on ``<html>``), and a page whose
script ran to its end says so (``data-ready`` on ``<body>``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["ERROR_TRAP", "SCRIPT", "STYLE"]

#: First in ``<head>``: errors of every later script land in the page.
ERROR_TRAP: Final = """
window.onerror = function (message, source, line) {
  document.documentElement.setAttribute("data-js-error", String(message) + " (line " + line + ")");
};
"""

STYLE: Final = """
:root { --ok: #2e7d32; --warning: #c77c02; --fail: #c62828; --muted: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #222; background: #fafafa; }
header, section, footer { max-width: 1000px; margin: 0 auto; padding: 12px 20px; }
header { border-bottom: 1px solid var(--line); background: #fff; max-width: none; }
header h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 18px 0 8px; }
.meta, .legend, .empty, footer { color: var(--muted); font-size: 12px; }
.chips { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
.chip { border-radius: 12px; padding: 2px 10px; background: #eee; }
.chip b { margin-left: 4px; }
.chip.ok { background: #e8f5e9; } .chip.warning { background: #fff3e0; }
.chip.fail { background: #ffebee; color: var(--fail); }
.figures { display: flex; flex-wrap: wrap; gap: 24px; margin: 8px 0; }
.figures div span { display: block; color: var(--muted); font-size: 12px; }
.figures div b { font-size: 18px; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left;
  vertical-align: top; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.test { overflow-wrap: anywhere; min-width: 18em; }
#all-tests { max-width: 1300px; }
#tests { table-layout: fixed; min-width: 1100px; }
#tests th { cursor: pointer; user-select: none; position: sticky; top: 0; background: #f0f0f0;
  z-index: 1; }
col.c-status { width: 7.5em; } col.c-outcome { width: 5.5em; } col.c-budget { width: 8em; }
col.c-peak, col.c-rss, col.c-heap, col.c-retained, col.c-duration { width: 7.5em; }
col.c-worker { width: 4.5em; } col.c-baseline { width: 9em; }
#table-view.virtual { max-height: 75vh; overflow: auto; border: 1px solid var(--line); }
#table-view.virtual td { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#tests tr.pad td { padding: 0; border: 0; }
td.outcome.failed, td.outcome.error { color: var(--fail); font-weight: 600; }
td.outcome.skipped, td.outcome.xfailed, td.outcome.not_run, td.outcome.unknown {
  color: var(--muted); }
td.outcome.xpassed { color: var(--warning); }
#tests th[aria-sort="ascending"]::after { content: " \\25B2"; }
#tests th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.fail td.status { color: var(--fail); font-weight: 600; }
tr.warning td.status { color: var(--warning); }
.controls { display: flex; gap: 8px; align-items: center; margin: 6px 0; }
.controls input { flex: 1; padding: 4px 6px; }
.worse { color: var(--fail); } .better { color: var(--ok); }
svg.chart { display: block; max-width: 100%; height: auto; background: #fff;
  border: 1px solid var(--line); margin-bottom: 6px; }
svg text { font-size: 11px; fill: #333; }
svg .tick { fill: var(--muted); font-size: 10px; }
svg .grid { stroke: #f0f0f0; } svg .axis { stroke: #999; }
.bar rect { fill: #5c8ddb; } .bar.warning rect { fill: var(--warning); }
.bar.fail rect { fill: var(--fail); } .bar:hover rect { opacity: .75; }
.bar .budget { stroke: #000; stroke-width: 2; }
.bar .value.inside { fill: #fff; }
.lane .lane-name { font-weight: 600; }
.lane .test .span { fill: transparent; }
.lane .test .peak { fill: #5c8ddb; opacity: .18; }
.lane .test.fail .peak { fill: var(--fail); opacity: .35; }
.lane .test .boundary { stroke: #5c8ddb; opacity: .12; }
.lane .test:hover .span { fill: #fff59d; opacity: .45; }
.lane .test:hover .boundary { opacity: .8; }
.lane .rss { fill: none; stroke: #1f4fa0; stroke-width: 1.5; pointer-events: none; }
.threshold { stroke-dasharray: 5 4; stroke-width: 1.2; }
.threshold.warn { stroke: var(--warning); } .threshold.crit { stroke: #e65100; }
.threshold.max { stroke: var(--fail); }
.threshold-label.warn { fill: var(--warning); } .threshold-label.crit { fill: #e65100; }
.threshold-label.max { fill: var(--fail); }
.lane .above { fill: var(--muted); }
.mark line { stroke-width: 1.5; } .mark text { font-size: 13px; }
.mark.stop line { stroke: var(--fail); } .mark.stop text { fill: var(--fail); }
.mark.kill line { stroke: #000; } .mark.recycle line { stroke: #6a1b9a; }
.mark.recycle text { fill: #6a1b9a; }
pre { white-space: pre-wrap; background: #fff; border: 1px solid var(--line); padding: 6px; }
"""

SCRIPT: Final = """
(function () {
  var data = JSON.parse(document.getElementById("table-data").textContent);
  var view = document.getElementById("table-view");
  var table = document.getElementById("tests");
  var body = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var query = document.getElementById("filter");
  var status = document.getElementById("status-filter");
  var outcome = document.getElementById("outcome-filter");
  var shown = document.getElementById("shown");
  var count = data.test.length;
  var state = {sort: null, dir: "desc"};
  var order = [];  // every row, in the order of the sort
  var visible = [];  // the rows the filters keep, in that order
  var haystacks = null;  // what the filter searches, built on its first use
  var rowHeight = 0;  // measured on the rows drawn
  // Until the page is loaded and shown, nothing is measured: a measure while it loads
  // would lay out the whole page once more before it is shown.
  var settled = false;
  var OVERSCAN = 15;  // rows drawn above and below the view
  var UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  var ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"};
  for (var i = 0; i < count; i += 1) {
    order.push(i);
    data.test[i] = data.files[data.file[i]] + data.test[i];  // the file's path and "::..."
  }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) { return ESCAPES[c]; });
  }

  function size(n) {  // core.sizes.format_size
    if (n === null || n === undefined) { return "-"; }
    var sign = n < 0 ? "-" : "", value = Math.abs(n);
    if (value < 1024) { return sign + Math.floor(value) + " B"; }
    for (var u = 0; ; u += 1) {
      value /= 1024;
      if (value < 1024 || u === UNITS.length - 1) {
        return sign + value.toFixed(1) + " " + UNITS[u];
      }
    }
  }

  function num(value) { return value === null || value === undefined ? "" : String(value); }

  function sizeCell(value) {
    return '<td class="num" data-v="' + num(value) + '">' + esc(size(value)) + "</td>";
  }

  function change(now, before) {
    if (before === null || before === undefined || now === null) {
      return '<td class="num" data-v="">-</td>';
    }
    var delta = now - before;
    var share = before > 0 ?
      " (" + (delta < 0 ? "-" : "+") + Math.abs(100 * delta / before).toFixed(0) + "%)" : "";
    var kind = delta > 0 ? "worse" : delta < 0 ? "better" : "";
    return '<td class="num" data-v="' + delta + '"><span class="' + kind + '">' +
      esc((delta > 0 ? "+" : "") + size(delta) + share) + "</span></td>";
  }

  function row(i) {  // the HTML table.py writes for the first rows
    var st = data.statuses[data.status[i]], out = data.outcomes[data.outcome[i]];
    var message = data.messages[i], budget = data.budget[i], cap = data.cap[i];
    var duration = data.duration[i];
    var html = '<tr class="' + esc(st[2]) + '" data-status="' + esc(st[0]) + '" title="' +
      esc(data.test[i] + (message ? "\\n" + message : "")) + '">' +
      '<td class="status" data-v="' + st[3] + '">' + esc(st[1]) + "</td>" +
      '<td class="outcome ' + out[1] + '">' + esc(out[0]) + "</td>" +
      '<td class="test">' + esc(data.test[i]) + "</td>" +
      sizeCell(data.peak[i]) + sizeCell(data.rss[i]) + sizeCell(data.heap[i]) +
      sizeCell(data.retained[i]) +
      '<td class="num" data-v="' + duration + '">' + duration.toFixed(3) + " s</td>" +
      '<td class="num" data-v="' + num(budget) + '">' +
      esc(size(budget) + (cap ? " (RSS cap " + size(cap) + ")" : "")) + "</td>" +
      "<td>" + esc(data.workers[data.worker[i]]) + "</td>";
    if (data.before) { html += change(data.peak[i], data.before[i]); }
    return html + "</tr>";
  }

  function pad(height) {
    return height > 0 ? '<tr class="pad" aria-hidden="true"><td colspan="' + heads.length +
      '" style="height: ' + height + 'px"></td></tr>' : "";
  }

  // Only the rows in view (and a few around) are in the document; padding rows above and
  // below give the table its full height, so the scroll bar is that of every row.
  function render(again) {
    var height = rowHeight || 24;
    var top = settled ? view.scrollTop : 0;
    var seen = settled ? view.clientHeight : 1200;  // the view is at most 75% of a screen
    var first = Math.max(0, Math.floor(top / height) - OVERSCAN);
    var last = Math.min(visible.length, Math.ceil((top + seen) / height) + OVERSCAN);
    var html = [pad(first * height)];
    for (var k = first; k < last; k += 1) { html.push(row(visible[k])); }
    html.push(pad((visible.length - last) * height));
    body.innerHTML = html.join("");
    document.body.setAttribute("data-rows", String(last - first));
    // The rows' height, measured on the rows drawn (the distance of the first and the
    // last: borders are shared); when it changed (a font, a zoom), drawn again with it.
    var drawn = body.querySelectorAll("tr[data-status]");
    if (settled && drawn.length > 1) {
      var pitch = (drawn[drawn.length - 1].getBoundingClientRect().top -
        drawn[0].getBoundingClientRect().top) / (drawn.length - 1);
      if (pitch > 0 && Math.abs(pitch - height) > 0.1 && !again) {
        rowHeight = pitch;
        render(true);
      }
    }
  }

  function numbers(column) {
    return function (i) {
      var v = column[i];
      return v === null || v === undefined ? -Infinity : v;
    };
  }

  var keys = {
    status: function (i) { return data.statuses[data.status[i]][3]; },
    outcome: function (i) { return data.outcomes[data.outcome[i]][0].toLowerCase(); },
    test: function (i) { return data.test[i].toLowerCase(); },
    peak: numbers(data.peak),
    rss: numbers(data.rss),
    heap: numbers(data.heap),
    retained: numbers(data.retained),
    duration: numbers(data.duration),
    budget: numbers(data.budget),
    worker: function (i) { return data.workers[data.worker[i]].toLowerCase(); },
    baseline: function (i) {
      var before = data.before ? data.before[i] : null, now = data.peak[i];
      return before === null || now === null ? -Infinity : now - before;
    }
  };

  function sortBy(key, dir) {
    var index = -1;
    heads.forEach(function (head, i) {
      if (head.getAttribute("data-key") === key) { index = i; }
    });
    if (index < 0) { return; }  // no such column: the order stays
    heads.forEach(function (head) { head.removeAttribute("aria-sort"); });
    var sign = dir === "asc" ? 1 : -1;
    var values = new Array(count);
    for (var i = 0; i < count; i += 1) { values[i] = keys[key](i); }
    order = [];
    for (i = 0; i < count; i += 1) { order.push(i); }
    order.sort(function (a, b) {
      if (values[a] < values[b]) { return -sign; }
      if (values[a] > values[b]) { return sign; }
      return a - b;
    });
    heads[index].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    state.sort = key; state.dir = dir;
    document.body.setAttribute("data-sorted", key + ":" + dir);
  }

  function filter() {
    var words = query.value.toLowerCase();
    var wanted = status.value, pytest = outcome.value;
    if (words && haystacks === null) {
      haystacks = new Array(count);
      for (var i = 0; i < count; i += 1) {
        haystacks[i] = [data.statuses[data.status[i]][1], data.outcomes[data.outcome[i]][0],
          data.test[i], data.workers[data.worker[i]], data.messages[i] || ""]
          .join(" ").toLowerCase();
      }
    }
    visible = order.filter(function (i) {
      return (!wanted || data.statuses[data.status[i]][0] === wanted) &&
        (!pytest || data.outcomes[data.outcome[i]][0] === pytest) &&
        (!words || haystacks[i].indexOf(words) >= 0);
    });
    shown.textContent = String(visible.length);
    if (settled) { view.scrollTop = 0; }
    render();
  }

  heads.forEach(function (head) {
    head.addEventListener("click", function () {
      var key = head.getAttribute("data-key");
      var dir = state.sort === key && state.dir === "desc" ? "asc" : "desc";
      if (state.sort !== key && !head.classList.contains("num")) { dir = "asc"; }
      sortBy(key, dir);
      filter();
    });
  });
  query.addEventListener("input", filter);
  status.addEventListener("change", filter);
  outcome.addEventListener("change", filter);
  var pending = false;
  function later() {
    if (pending) { return; }
    pending = true;
    window.requestAnimationFrame(function () { pending = false; render(); });
  }
  view.addEventListener("scroll", later);
  window.addEventListener("resize", later);

  // A fragment is typed or pasted by hand: a malformed escape ("100%") is read as it
  // stands, an unknown key is ignored, an unknown status, outcome or column shows every
  // row unsorted.
  function decoded(text) {
    try { return decodeURIComponent(text); } catch (malformed) { return text; }
  }

  function choose(select, value) {
    if (value === undefined) { return; }
    var known = Array.prototype.some.call(select.options, function (option) {
      return option.value === value;
    });
    select.value = known ? value : "";
  }

  function fromFragment() {
    var params = Object.create(null);
    location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) { params[decoded(pair.slice(0, at))] = decoded(pair.slice(at + 1)); }
    });
    if (params.q !== undefined) { query.value = params.q; }
    choose(status, params.status);
    choose(outcome, params.outcome);
    if (params.sort) { sortBy(params.sort, params.dir === "asc" ? "asc" : "desc"); }
    filter();
  }
  view.classList.add("virtual");
  window.addEventListener("hashchange", fromFragment);
  fromFragment();
  window.addEventListener("load", function () {  // after the first frame is painted
    window.requestAnimationFrame(function () {
      window.setTimeout(function () { settled = true; render(); }, 0);
    });
  });
  var drawn = document.querySelectorAll("svg.chart").length;
  document.body.setAttribute("data-charts", String(drawn));
  document.body.setAttribute("data-ready", "1");
})();
"""
