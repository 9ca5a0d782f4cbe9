// debugtrace dashboard: progressive enhancement only (every page works without this file).
// Rows (and the trace page's status) of traces that are queued or being finalized are refreshed
// every 2 s from GET /api/traces/{id} (same origin; the session cookie authenticates it).
// The trace page's "Find a test" box filters the tests as you type (without the script it is a
// GET form the server answers with the same filter).
"use strict";
(function () {
  var LIVE = { queued: true, finalizing: true };
  var VERDICT_CLASS = {
    yes: "verdict-yes", no: "verdict-no", "could not test": "verdict-untested", "\u2014": "verdict-none",
  };
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
        if (v) {
          var text = validatedOf(trace.result);
          var span = document.createElement("span");
          span.className = "verdict " + VERDICT_CLASS[text];
          span.textContent = text;
          v.replaceChildren(span);
        }
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

  // Filter the tests in place: hide those that do not match, open the groups that have some,
  // and say how many match. The form still works (Enter submits it) without this.
  function filterTests(input) {
    var needle = input.value.trim().toLowerCase();
    var note = document.getElementById("tests-filter-note");
    var found = 0;
    document.querySelectorAll("#tests details.test-group").forEach(function (group) {
      var shown = 0;
      group.querySelectorAll(".test-list li").forEach(function (li) {
        var match = !needle || li.textContent.toLowerCase().indexOf(needle) !== -1;
        li.hidden = !match;
        if (match) { shown += 1; }
      });
      found += shown;
      if (!group.hasAttribute("data-was-open")) {
        group.setAttribute("data-was-open", group.open ? "1" : "0");
      }
      group.open = needle ? shown > 0 : group.getAttribute("data-was-open") === "1";
      var count = group.querySelector(".group-count");
      var total = group.querySelectorAll(".test-list li").length;
      if (count) { count.textContent = needle ? "(" + shown + " of " + total + ")" : "(" + total + ")"; }
    });
    if (note) {
      note.textContent = needle ? found + (found === 1 ? " test matches" : " tests match") + " \u201c" + input.value.trim() + "\u201d." : "";
    }
  }

  var testFilter = document.getElementById("tests-filter");
  if (testFilter && !testFilter.value) { // a server-side search is already applied: leave it
    testFilter.addEventListener("input", function () { filterTests(testFilter); });
  }

  document.querySelectorAll("#traces tr[data-trace-id]").forEach(function (row) {
    if (LIVE[row.getAttribute("data-status")]) { watchRow(row); }
  });
  var status = document.getElementById("trace-status");
  if (status && LIVE[status.getAttribute("data-status")]) { watchTrace(status); }
})();
