/* Attune console: live progress of training jobs (polls /console/jobs.json while any is open). */
(function () {
  "use strict";
  var rows = document.querySelectorAll("[data-job-id]");
  if (!rows.length) return;
  var url = document.body.dataset.jobsUrl || "/console/jobs.json";

  function openIds() {
    return Array.prototype.filter.call(rows, function (r) { return r.dataset.open === "true"; })
      .map(function (r) { return r.dataset.jobId; });
  }

  function update(job) {
    document.querySelectorAll("[data-job-id='" + job.id + "']").forEach(function (row) {
      row.dataset.open = job.is_open ? "true" : "false";
      var bar = row.querySelector(".progress > span");
      if (bar) bar.style.width = Math.round(job.progress * 100) + "%";
      var set = function (sel, text) { var el = row.querySelector(sel); if (el) el.textContent = text; };
      set("[data-field=status]", job.status);
      set("[data-field=progress]", Math.round(job.progress * 100) + "%");
      set("[data-field=loss]", job.loss === null ? "—" : Number(job.loss).toFixed(3));
      set("[data-field=attempts]", job.attempts);
      set("[data-field=error]", job.error || "");
    });
  }

  function poll() {
    var ids = openIds();
    if (!ids.length) return;
    fetch(url + "?ids=" + ids.join(","), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (data) data.jobs.forEach(update);
        setTimeout(poll, 2000);
      }).catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
