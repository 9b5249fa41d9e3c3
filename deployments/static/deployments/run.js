// Follow a run without reloading: ask the API for the run every half second
// until it ends, and redraw each step's status, duration, proof and log.
(function () {
  "use strict";
  const article = document.querySelector("[data-run-url]");
  if (!article) return;
  const url = article.dataset.runUrl;
  const POLL_MS = 500;

  function redraw(run) {
    article.querySelector("[data-run-status]").textContent = run.status;
    article.querySelector("[data-run-digest]").textContent = run.digest ? "· " + run.digest : "";
    const error = article.querySelector("[data-run-error]");
    error.textContent = run.error;
    error.hidden = !run.error;
    const service = article.querySelector("[data-run-service]");
    const deployment = run.deployment;
    if (!run.active && deployment && deployment.url && run.status === "succeeded") {
      service.replaceChildren("The service answers at ");
      const link = document.createElement("a");
      link.href = deployment.url;
      link.textContent = deployment.url;
      service.append(link);
      service.hidden = false;
    }
    for (const step of run.steps) {
      const item = article.querySelector('[data-step="' + CSS.escape(step.name) + '"]');
      if (!item) continue;
      item.className = "step step-" + step.status;
      item.querySelector("[data-step-status]").textContent = step.status;
      item.querySelector("[data-step-duration]").textContent =
        step.duration_ms === null ? "" : (step.duration_ms / 1000).toFixed(2) + " s";
      item.querySelector("[data-step-progress]").value = step.progress;
      const proof = item.querySelector("[data-step-proof]");
      proof.textContent = step.proof ? "Proved: " + step.proof : "";
      proof.hidden = !step.proof;
      const log = item.querySelector("[data-step-log]");
      if (log.textContent !== step.log) {
        log.textContent = step.log;
        log.scrollTop = log.scrollHeight;
      }
    }
    return run.active;
  }

  async function poll() {
    let active = true;
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      if (answer.ok) active = redraw(await answer.json());
    } catch (error) {
      // A dropped request is retried on the next tick.
    }
    if (active) setTimeout(poll, POLL_MS);
  }
  poll();
})();
