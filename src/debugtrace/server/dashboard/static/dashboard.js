// debugtrace dashboard: progressive enhancement only (every page works without this file).
// Rows (and the trace page's status) of traces that are queued or being finalized are refreshed
// every 2 s from GET /api/traces/{id} (same origin; the session cookie authenticates it).
"use strict";
(function () {
  var LIVE = { queued: true, finalizing: true };
  var PERIOD_MS = 2000;
  var MAX_POLLS = 1800; // an hour; reload the page to watch longer

  function scoreOf(result) {
    var latest = {};
    (result && result.grades || []).forEach(function (g) { latest[g.grader] = g.score; });
    var scores = Object.keys(latest).map(function (k) { return latest[k]; });
    return scores.length ? Math.min.apply(null, scores) : null;
  }

  // As the list renders it: yes / no / could not test (no verdict from tests that ran or tried
  // to: fix_validated null, or a tests stage that failed without a validation) / a dash.
  function validatedOf(result) {
    var v = result && result.validation;
    if (v && v.fix_validated === true) { return "yes"; }
    if (v && v.fix_validated === false) { return "no"; }
    var failed = (result && result.stages || []).some(function (st) {
      return st.name === "tests" && (st.status === "failed" || st.status === "error");
    });
    return v || failed ? "could not test" : "\u2014";
  }

  function setStatus(span, status) {
    span.className = "status status-" + status;
    span.textContent = status;
  }

  function watch(id, onUpdate) {
    var polls = 0;
    function tick() {
      polls += 1;
      fetch("/api/traces/" + encodeURIComponent(id), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (trace) {
          if (!trace) { return; } // signed out or gone: stop quietly
          onUpdate(trace);
          if (LIVE[trace.status] && polls < MAX_POLLS) { setTimeout(tick, PERIOD_MS); }
        })
        .catch(function () {
          if (polls < MAX_POLLS) { setTimeout(tick, PERIOD_MS * 2); }
        });
    }
    setTimeout(tick, PERIOD_MS);
  }

  function watchRow(row) {
    watch(row.getAttribute("data-trace-id"), function (trace) {
      row.setAttribute("data-status", trace.status);
      var span = row.querySelector(".col-status .status");
      if (span) { setStatus(span, trace.status); }
      if (!LIVE[trace.status]) {
        var v = row.querySelector(".col-validated");
        var s = row.querySelector(".col-score");
        if (v) { v.textContent = validatedOf(trace.result); }
        if (s) { var n = scoreOf(trace.result); s.textContent = n === null ? "\u2014" : String(n); }
      }
    });
  }

  function watchTrace(span) {
    watch(span.getAttribute("data-trace-id"), function (trace) {
      var before = span.getAttribute("data-status");
      span.setAttribute("data-status", trace.status);
      setStatus(span, trace.status);
      if (LIVE[before] && !LIVE[trace.status]) { window.location.reload(); } // show the results
    });
  }

  document.querySelectorAll("#traces tr[data-trace-id]").forEach(function (row) {
    if (LIVE[row.getAttribute("data-status")]) { watchRow(row); }
  });
  var status = document.getElementById("trace-status");
  if (status && LIVE[status.getAttribute("data-status")]) { watchTrace(status); }
})();
