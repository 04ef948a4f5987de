// The export job page: poll the job's status and move the progress bar until it is done or failed.
(function () {
  "use strict";
  var box = document.getElementById("export-status");
  if (!box) return;
  var url = box.getAttribute("data-status-url");
  var labels = { queued: "排队中", running: "导出中", done: "已完成", failed: "失败" };

  function show(job) {
    document.getElementById("export-state").textContent = labels[job.status] || job.status;
    document.getElementById("export-count").textContent =
      "已写入 " + job.rows_done + " / " + job.rows_total + " 条记录";
    var bar = document.getElementById("export-bar");
    bar.style.width = job.percent + "%";
    bar.parentNode.setAttribute("aria-valuenow", String(job.percent));
    document.getElementById("export-done").hidden = job.status !== "done";
    var err = document.getElementById("export-error");
    err.hidden = job.status !== "failed";
    if (job.status === "failed" && job.error) err.textContent = job.error;
    document.getElementById("export-wait").hidden = job.status === "done" || job.status === "failed";
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (job) {
        if (!job) { setTimeout(poll, 3000); return; }
        show(job);
        if (job.status === "queued" || job.status === "running") setTimeout(poll, 1000);
      })
      .catch(function () { setTimeout(poll, 3000); });
  }

  var status = box.getAttribute("data-status");
  if (status === "queued" || status === "running") setTimeout(poll, 500);
})();
