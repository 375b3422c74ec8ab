"""The report page's inline style and script (no file, font or address outside the page).

The script sorts and filters the table of tests.  The page's address fragment sets the
same state, so a link can show a view and a test can drive the page without a browser
protocol: ``#sort=peak&dir=desc&q=leak&status=leak`` (a malformed escape is read as it
stands, an unknown key or value is ignored).  An error in any script of the
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
#tests th { cursor: pointer; user-select: none; position: sticky; top: 0; background: #f0f0f0; }
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
  var table = document.getElementById("tests");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var query = document.getElementById("filter");
  var status = document.getElementById("status-filter");
  var shown = document.getElementById("shown");
  var state = {sort: null, dir: "desc"};

  function value(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-v");
    if (numeric) { return raw === null || raw === "" ? -Infinity : parseFloat(raw); }
    return (raw === null ? cell.textContent : raw).toLowerCase();
  }

  function sortBy(key, dir) {
    var index = -1;
    heads.forEach(function (head, i) {
      if (head.getAttribute("data-key") === key) { index = i; }
    });
    if (index < 0) { return; }  // no such column: the order stays
    heads.forEach(function (head) { head.removeAttribute("aria-sort"); });
    var numeric = heads[index].classList.contains("num");
    var sign = dir === "asc" ? 1 : -1;
    var order = rows.map(function (row, i) { return [value(row, index, numeric), i, row]; });
    order.sort(function (a, b) {
      if (a[0] < b[0]) { return -sign; }
      if (a[0] > b[0]) { return sign; }
      return a[1] - b[1];
    });
    order.forEach(function (entry) { body.appendChild(entry[2]); });
    heads[index].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    state.sort = key; state.dir = dir;
    document.body.setAttribute("data-sorted", key + ":" + dir);
  }

  function filter() {
    var words = query.value.toLowerCase();
    var wanted = status.value;
    var count = 0;
    rows.forEach(function (row) {
      var match = (!words || row.textContent.toLowerCase().indexOf(words) >= 0) &&
        (!wanted || row.getAttribute("data-status") === wanted);
      row.hidden = !match;
      if (match) { count += 1; }
    });
    shown.textContent = String(count);
  }

  heads.forEach(function (head) {
    head.addEventListener("click", function () {
      var key = head.getAttribute("data-key");
      var dir = state.sort === key && state.dir === "desc" ? "asc" : "desc";
      if (state.sort !== key && !head.classList.contains("num")) { dir = "asc"; }
      sortBy(key, dir);
    });
  });
  query.addEventListener("input", filter);
  status.addEventListener("change", filter);

  // A fragment is typed or pasted by hand: a malformed escape ("100%") is read as it
  // stands, an unknown key is ignored, an unknown status or column shows every row unsorted.
  function decoded(text) {
    try { return decodeURIComponent(text); } catch (malformed) { return text; }
  }

  function fromFragment() {
    var params = Object.create(null);
    location.hash.replace(/^#/, "").split("&").forEach(function (pair) {
      var at = pair.indexOf("=");
      if (at > 0) { params[decoded(pair.slice(0, at))] = decoded(pair.slice(at + 1)); }
    });
    if (params.q !== undefined) { query.value = params.q; }
    if (params.status !== undefined) {
      var known = Array.prototype.some.call(status.options, function (option) {
        return option.value === params.status;
      });
      status.value = known ? params.status : "";
    }
    if (params.sort) { sortBy(params.sort, params.dir === "asc" ? "asc" : "desc"); }
    filter();
  }
  window.addEventListener("hashchange", fromFragment);
  fromFragment();
  var drawn = document.querySelectorAll("svg.chart").length;
  document.body.setAttribute("data-charts", String(drawn));
  document.body.setAttribute("data-ready", "1");
})();
"""
