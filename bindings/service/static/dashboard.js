// The k50core dashboard: reads /v1/reports, /v1/pools/usage and /dashboard/plan with the session
// cookie and draws them with Chart.js. What each chart shows is kept in window.k50dashboard, so a
// test can compare it with the API's answers.
(function () {
  "use strict";
  var DAY = 86400;
  var COLORS = { matched: "#2e7d32", late: "#9ccc65", ambiguous: "#f9a825", "static": "#1565c0",
    offline: "#6a1b9a", unmatched: "#c62828" };
  var state = window.k50dashboard = { ready: false, errors: [] };
  var params = new URLSearchParams(window.location.search);
  var until = Number(params.get("until")) || Math.floor(Date.now() / 1000);
  var since = Number(params.get("since")) || until - 30 * DAY;
  state.since = since; state.until = until;
  document.getElementById("period").textContent =
    new Date(since * 1000).toISOString().slice(0, 10) + " to " + new Date(until * 1000).toISOString().slice(0, 10);

  function get(path) {
    return fetch(path, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error(path + ": " + r.status); }
        return r.json();
      });
  }
  function money(x) { return x === null || x === undefined ? "" : x.toFixed(2); }
  function text(x) { return x === null || x === undefined ? "(none)" : String(x); }

  function callsPerDay(report) {
    var days = [], statuses = [], counts = {};
    report.rows.forEach(function (r) {
      var status = r.unmatched ? "unmatched" : text(r.status);
      if (days.indexOf(r.day) < 0) { days.push(r.day); }
      if (statuses.indexOf(status) < 0) { statuses.push(status); }
      counts[status + "|" + r.day] = (counts[status + "|" + r.day] || 0) + r.calls;
    });
    days.sort();
    var datasets = statuses.map(function (s) {
      return { label: s, backgroundColor: COLORS[s] || "#888",
        data: days.map(function (d) { return counts[s + "|" + d] || 0; }) };
    });
    state.callsPerDay = { labels: days, datasets: datasets.map(function (d) {
      return { label: d.label, data: d.data.slice() }; }) };
    new Chart(document.getElementById("calls-per-day"), { type: "bar",
      data: { labels: days, datasets: datasets },
      options: { animation: false, responsive: true,
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } } });
  }

  function topSources(report) {
    var rows = report.rows.filter(function (r) { return r.calls > 0 || r.visits > 0; }).slice(0, 10);
    state.top = rows.map(function (r) {
      return { source: r.unmatched ? "unmatched" : r.source, campaign: r["query.utm_campaign"],
        visits: r.visits, calls: r.calls, conversion: r.visits ? r.calls / r.visits : null, deals: r.deals,
        revenue: r.revenue, cost_per_call: r.calls ? r.cost / r.calls : null };
    });
    var body = document.querySelector("#top-table tbody");
    state.top.forEach(function (r) {
      var tr = document.createElement("tr");
      [text(r.source), text(r.campaign), text(r.visits), r.calls,
        r.conversion === null ? "" : (100 * r.conversion).toFixed(1) + "%", r.deals, money(r.revenue),
        money(r.cost_per_call)].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = v;  // visitors' utm tags: text, never markup
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    new Chart(document.getElementById("top-sources"), { type: "bar",
      data: { labels: state.top.map(function (r) { return text(r.source) + " / " + text(r.campaign); }),
        datasets: [{ label: "visits", backgroundColor: "#90caf9", data: state.top.map(function (r) { return r.visits || 0; }) },
          { label: "calls", backgroundColor: "#1565c0", data: state.top.map(function (r) { return r.calls; }) }] },
      options: { animation: false, indexAxis: "y", responsive: true } });
  }

  function pools(usage) {
    var holder = document.getElementById("pools");
    state.pools = {};
    Object.keys(usage.pools).forEach(function (name) {
      var u = usage.pools[name];
      var labels = u.steps.map(function (s) { return new Date(s.at * 1000).toISOString().slice(0, 13) + "h"; });
      var exhausted = u.steps.map(function (s) { return s.exhausted_shared + s.exhausted_default; });
      state.pools[name] = { labels: labels, peak: u.steps.map(function (s) { return s.peak_leased; }),
        numbers: u.numbers, exhausted: exhausted, recommended: u.recommended_numbers };
      var title = document.createElement("h2");
      title.textContent = name + " (" + u.numbers + " numbers" +
        (u.recommended_numbers ? ", sizing recommends " + u.recommended_numbers : "") + ")";
      var canvas = document.createElement("canvas");
      canvas.id = "pool-" + name;
      holder.appendChild(title); holder.appendChild(canvas);
      var datasets = [
        { label: "peak leased", data: state.pools[name].peak, borderColor: "#1565c0", spanGaps: true,
          pointRadius: exhausted.map(function (e) { return e ? 5 : 0; }),
          pointBackgroundColor: exhausted.map(function (e) { return e ? "#c62828" : "#1565c0"; }) },
        { label: "numbers", data: labels.map(function () { return u.numbers; }), borderColor: "#888", pointRadius: 0 },
        { label: "exhausted (visits)", data: exhausted, type: "bar", backgroundColor: "#c62828", yAxisID: "y2" }];
      if (u.recommended_numbers) {
        datasets.push({ label: "recommended size", data: labels.map(function () { return u.recommended_numbers; }),
          borderColor: "#2e7d32", borderDash: [6, 4], pointRadius: 0 });
      }
      new Chart(canvas, { type: "line", data: { labels: labels, datasets: datasets },
        options: { animation: false, responsive: true, scales: { y: { beginAtZero: true },
          y2: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, ticks: { precision: 0 } } } } });
    });
  }

  function minutes(plan) {
    state.minutes = { used: plan.minutes_this_month, included: plan.minutes_included };
    new Chart(document.getElementById("minutes"), { type: "bar",
      data: { labels: ["minutes"], datasets: [
        { label: "used this month", data: [plan.minutes_this_month], backgroundColor: "#1565c0" },
        { label: "package (" + (plan.package || plan.plan) + ")", data: [plan.minutes_included], backgroundColor: "#cfd8dc" }] },
      options: { animation: false, indexAxis: "y", responsive: true } });
    document.getElementById("minutes-note").textContent = plan.minutes_this_month + " of " +
      plan.minutes_included + " minutes used (" + (100 * plan.minutes_this_month / Math.max(1, plan.minutes_included)).toFixed(1) + "%)";
  }

  var range = "&since=" + since + "&until=" + until;
  Promise.all([
    get("/v1/reports?by=day,status" + range).then(callsPerDay),
    get("/v1/reports?by=source,query.utm_campaign" + range).then(topSources),
    get("/v1/pools/usage?step=" + (until - since > 2 * DAY ? 6 * 3600 : 3600) + range).then(pools),
    get("/dashboard/plan").then(minutes)
  ]).then(function () { state.ready = true; }, function (e) { state.errors.push(String(e)); state.ready = true; });
}());
