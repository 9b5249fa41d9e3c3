// Follow a run without reloading: ask the API for the run every half second
// until it ends, and redraw each step's status, duration, proof and log.
// Once it has ended, say what serves now and offer the deployment's owner
// its logs, a roll back and a tear down.
(function () {
  "use strict";
  const article = document.querySelector("[data-run-url]");
  if (!article) return;
  const url = article.dataset.runUrl;
  const runId = Number(article.dataset.runId);
  const POLL_MS = 500;
  // After a dropped request or an error answer, wait longer each time.
  const RETRY_MAX_MS = 8000;
  let retryMs = POLL_MS;

  // A run still queued after this long is waiting for a worker that may
  // not be there; the page says so rather than only "queued".
  const QUEUED_HINT_MS = 10000;
  let queuedSince = null;

  function queuedSay(run) {
    const said = article.querySelector("[data-run-waiting]");
    if (run.status !== "queued") {
      said.hidden = true;
      return;
    }
    if (queuedSince === null) queuedSince = Date.now();
    said.hidden = Date.now() - queuedSince < QUEUED_HINT_MS;
  }

  function redraw(run) {
    queuedSay(run);
    article.querySelector("[data-run-status]").textContent = run.status;
    article.querySelector("[data-run-digest]").textContent = run.digest ? "· " + run.digest : "";
    const error = article.querySelector("[data-run-error]");
    const said = run.error && run.failed_step
      ? "The " + run.failed_step + " step failed: " + run.error
      : run.error;
    if (error.textContent !== said) error.textContent = said;
    error.hidden = !run.error;
    serviceDraw(run);
    for (const step of run.steps) {
      const item = article.querySelector('[data-step="' + CSS.escape(step.name) + '"]');
      if (!item) continue;
      item.className = "step step-" + step.status;
      item.querySelector("[data-step-status]").textContent = step.status;
      item.querySelector("[data-step-duration]").textContent =
        step.duration_ms === null ? "" : (step.duration_ms / 1000).toFixed(2) + " s";
      // A running step that reports no progress of its own (a push, a
      // health check) shows a busy bar rather than an empty one.
      const bar = item.querySelector("[data-step-progress]");
      if (step.status === "running" && !step.progress) bar.removeAttribute("value");
      else bar.value = step.progress;
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

  // What the deployment this run acted on looks like now, in words. A run
  // whose container has been replaced since does not claim the service.
  function serviceWords(run, deployment) {
    const name = deployment.name;
    const ours = deployment.last_run === runId;
    const live = deployment.status === "live";
    if (!live) {
      return ours
        ? [name + " is torn down: nothing of it runs on " + deployment.target + "."]
        : [name + " has been torn down since, by ", runLink(deployment.last_run), "."];
    }
    const address = deployment.url ? serviceLink(deployment.url) : "its published port";
    if (ours && run.status === "succeeded") return ["The service answers at ", address];
    if (ours) {
      return [name + " runs this run's container at ", address,
        ", although the run failed after starting it."];
    }
    if (run.status === "failed") {
      return [name + " keeps serving at ", address, ", as ", runLink(deployment.last_run),
        " left it; this run did not replace it."];
    }
    return [name + " has changed since: ", runLink(deployment.last_run),
      " left it serving at ", address, "."];
  }

  function serviceLink(address) {
    const link = document.createElement("a");
    link.href = address;
    link.textContent = address;
    return link;
  }

  function runLink(id) {
    if (!id) return "a later run";
    const link = document.createElement("a");
    link.href = article.dataset.pages + "runs/" + id + "/";
    link.textContent = "run " + id;
    return link;
  }

  function serviceDraw(run) {
    const section = article.querySelector("[data-service-section]");
    const deployment = run.deployment;
    if (run.active || !deployment) {
      section.hidden = true;
      return;
    }
    const words = article.querySelector("[data-run-service]");
    const parts = serviceWords(run, deployment);
    const text = parts.map((part) => (typeof part === "string" ? part : part.textContent)).join("");
    if (words.textContent !== text) words.replaceChildren(...parts);
    section.hidden = false;

    const actions = article.querySelector("[data-service-actions]");
    // Without the engine every action would be refused; the page says
    // what is missing instead.
    const acts = deployment.status === "live" && deployment.managed === true &&
      !("engineMissing" in article.dataset);
    actions.hidden = !acts;
    if (!acts) return;
    const base = article.dataset.pages + deployment.id + "/";
    const rollback = article.querySelector("[data-service-rollback]");
    rollback.action = base + "rollback";
    rollback.hidden = !deployment.previous_digest;
    article.querySelector("[data-service-rollback-to]").textContent = deployment.previous_digest
      ? "to " + deployment.previous_digest.slice(0, 19) + "…"
      : "";
    article.querySelector("[data-service-teardown]").action = base + "teardown";
    const logs = article.querySelector("[data-service-logs-button]");
    logs.dataset.logsUrl = article.dataset.api + deployment.id + "/logs";
  }

  async function logsShow(button) {
    const log = article.querySelector("[data-service-log]");
    button.disabled = true;
    log.hidden = false;
    log.textContent = "Reading its logs…";
    try {
      const answer = await fetch(button.dataset.logsUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const body = await answer.json().catch(() => ({}));
      if (answer.ok) {
        log.textContent = body.logs || "(the service wrote no lines)";
        log.scrollTop = log.scrollHeight;
      } else {
        log.textContent = "Its logs could not be read: " + (body.detail || answer.status);
      }
    } catch (error) {
      log.textContent = "Its logs could not be read: the site did not answer.";
    }
    button.disabled = false;
    button.textContent = "Read its logs again";
  }

  article.querySelector("[data-service-logs-button]").addEventListener("click", (event) => {
    logsShow(event.currentTarget);
  });

  function connectionSay(text) {
    const said = article.querySelector("[data-run-connection]");
    if (said.textContent !== text) said.textContent = text;
    said.hidden = !text;
  }

  async function poll() {
    let active = true;
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      if (answer.ok) {
        active = redraw(await answer.json());
        connectionSay("");
        retryMs = POLL_MS;
      } else if (answer.status === 401 || answer.status === 403) {
        // Signed out, or no longer an instructor: asking again will not help.
        connectionSay(
          "This page stopped following the run: the site answered " + answer.status +
          " (signed out?). Sign in again and reload the page."
        );
        return;
      } else {
        connectionSay("The site answered " + answer.status + "; trying again…");
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
      }
    } catch (error) {
      connectionSay("The site does not answer; trying again…");
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    }
    if (active) setTimeout(poll, retryMs);
  }
  poll();
})();
