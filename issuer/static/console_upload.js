// The upload's job page: the progress bar follows the job's JSON until it is done. No script?
// The page reloads itself (<noscript> refresh) and has a reload link.
(function () {
  "use strict";
  var section = document.querySelector("[data-job-page]");
  if (!section || section.getAttribute("data-done") === "true") return;
  var bar = section.querySelector("[data-progress]");
  var status = section.querySelector("[data-status-text]");
  var reload = section.querySelector("[data-reload]");
  var url = section.getAttribute("data-progress-url");
  var template = status.getAttribute("data-template");
  var doneText = status.getAttribute("data-done-text");
  var lastText = status.textContent;
  var failures = 0;

  function grouped(n) { return Number(n).toLocaleString("en-US"); }

  function show(job) {
    bar.max = job.total;
    bar.value = job.processed;
    bar.textContent = job.processed + " / " + job.total;
    Object.keys(job.counts).forEach(function (state) {
      var cell = section.querySelector('[data-count="' + state + '"]');
      if (cell) cell.textContent = grouped(job.counts[state]);
    });
    var failed = section.querySelector('[data-count="failed"]');
    if (failed) failed.textContent = grouped(job.failed);
    var text = template.replace("{done}", grouped(job.processed)).replace("{total}", grouped(job.total));
    if (job.done) text += " " + doneText;
    if (text !== lastText) { status.textContent = text; lastText = text; }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) {
        if (!answer.ok) throw new Error(String(answer.status));
        return answer.json();
      })
      .then(function (job) {
        failures = 0;
        show(job);
        if (job.done) {
          section.setAttribute("data-done", "true");
          if (reload && reload.parentNode) reload.parentNode.remove();  // its <p>
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        failures += 1;
        window.setTimeout(poll, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }

  window.setTimeout(poll, 500);
})();
