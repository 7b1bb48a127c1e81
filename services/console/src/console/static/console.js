// The console pages: live refresh (the page's live part every data-refresh-ms), charts
// (plotly.js, served by the console), sortable and filterable tables. No inline script:
// the pages' Content-Security-Policy allows scripts of this origin only.
(function () {
  "use strict";
  var body = document.body;
  var refreshMs = parseInt(body.getAttribute("data-refresh-ms") || "0", 10);
  var sorts = {};    // table id -> {col, dir}
  var filters = {};  // table id -> text

  function drawCharts(root) {
    var data = root.querySelector("#charts-data");
    if (!data || !window.Plotly) return;
    var figs = JSON.parse(data.textContent);
    Object.keys(figs).forEach(function (id) {
      var div = document.getElementById("chart-" + id);
      if (div) window.Plotly.react(div, figs[id].data, figs[id].layout, {displayModeBar: false, responsive: true});
    });
  }

  function cellValue(row, col) {
    var cell = row.children[col];
    var v = cell ? cell.getAttribute("data-sort") : "";
    var n = parseFloat(v);
    return (v !== "" && !isNaN(n) && isFinite(v)) ? n : (v || "").toLowerCase();
  }

  function sortTable(table, col, dir) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows).filter(function (r) { return !r.classList.contains("empty"); });
    rows.sort(function (a, b) {
      var x = cellValue(a, col), y = cellValue(b, col);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.classList.toggle("asc", i === col && dir === 1);
      th.classList.toggle("desc", i === col && dir === -1);
    });
  }

  function filterTable(table, text) {
    var needle = text.trim().toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      if (r.classList.contains("empty")) return;
      r.hidden = needle !== "" && r.textContent.toLowerCase().indexOf(needle) === -1;
    });
  }

  function wire(root) {
    Array.prototype.forEach.call(root.querySelectorAll("table[data-table]"), function (table) {
      var id = table.getAttribute("data-table");
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
        th.addEventListener("click", function () {
          var s = sorts[id];
          var dir = (s && s.col === i) ? -s.dir : 1;
          sorts[id] = {col: i, dir: dir};
          sortTable(table, i, dir);
        });
      });
      if (sorts[id]) sortTable(table, sorts[id].col, sorts[id].dir);
      var input = root.querySelector('input[data-filter="' + id + '"]');
      if (input) {
        input.value = filters[id] || "";
        input.addEventListener("input", function () { filters[id] = input.value; filterTable(table, input.value); });
        if (filters[id]) filterTable(table, filters[id]);
      }
    });
  }

  function refresh() {
    var url = new URL(window.location.href);
    url.searchParams.set("part", "live");
    url.searchParams.delete("done");
    fetch(url.toString(), {credentials: "same-origin", headers: {"Accept": "text/html"}}).then(function (r) {
      if (r.status === 401) {
        window.location.href = "/login?why=ended&next=" + encodeURIComponent(window.location.pathname + window.location.search);
        return null;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      if (html === null) return;
      var live = document.getElementById("live");
      var active = document.activeElement;
      var focused = active && active.getAttribute ? active.getAttribute("data-filter") : null;
      live.innerHTML = html;
      wire(live);
      drawCharts(live);
      var stamp = live.querySelector("[data-updated]");
      if (stamp) document.getElementById("updated-at").textContent = stamp.textContent;
      if (focused) {
        var f = live.querySelector('input[data-filter="' + focused + '"]');
        if (f) { f.focus(); f.setSelectionRange(f.value.length, f.value.length); }
      }
      document.getElementById("live-stale").hidden = true;
      body.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () {
      document.getElementById("live-stale").hidden = false;
    }).then(function () {
      window.setTimeout(refresh, refreshMs);
    });
  }

  var week = document.querySelector("select[data-week]");
  if (week) week.addEventListener("change", function () { week.form.submit(); });
  var live = document.getElementById("live");
  if (live) {
    wire(live);
    drawCharts(live);
    if (refreshMs > 0) window.setTimeout(refresh, refreshMs);
  }
})();
