// Passkey ceremonies in the browser: fetch options from the site, ask the
// authenticator, send the answer back. Elements opt in with data- attributes.
"use strict";

(() => {
  // Passkeys belong to the site's RP id; at another host name (such as
  // 127.0.0.1 for localhost) the browser refuses them, so say where to go.
  const rpId = document.body.dataset.rpId || window.location.hostname;
  const host = window.location.hostname;
  const rightHost = host === rpId || host.endsWith(`.${rpId}`);
  const supported = typeof window.PublicKeyCredential === "function" && rightHost;

  const toBytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  };
  const toText = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

  const creationOptions = (json) => ({
    ...json,
    challenge: toBytes(json.challenge),
    user: { ...json.user, id: toBytes(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
  });
  const requestOptions = (json) => ({
    ...json,
    challenge: toBytes(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: toBytes(c.id) })),
  });

  const credentialJSON = (credential) => {
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment,
    };
  };

  const csrfToken = () => {
    const field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  };

  // Where to go after a ceremony: the page's own ?next=, else back here,
  // unless "here" is one of the account pages themselves.
  const nextPage = () => {
    const asked = new URLSearchParams(window.location.search).get("next");
    if (asked) return asked;
    if (window.location.pathname.startsWith("/accounts/")) return "";
    return window.location.pathname + window.location.search;
  };

  const post = async (url, body) => {
    const next = nextPage();
    const response = await fetch(next ? `${url}?next=${encodeURIComponent(next)}` : url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(answer.detail || `The site answered ${response.status}.`);
      error.answer = answer;
      throw error;
    }
    return answer;
  };

  const say = (element, text, kind) => {
    const target = (element && element.closest("[data-passkey-area]")?.querySelector("[data-passkey-status]"))
      || document.querySelector("[data-passkey-status]");
    if (target) {
      target.textContent = text;
      target.dataset.kind = kind || "info";
      target.hidden = !text;
    }
  };

  const explain = (error) => {
    if (error.name === "NotAllowedError") return "The passkey request was cancelled or timed out.";
    if (error.name === "InvalidStateError") return "This passkey is already registered for this account.";
    if (error.name === "AbortError") return "";
    return error.message;
  };

  // The pending autofill request, if any: its controller, and a promise
  // that settles once it has ended.
  let conditional = null;

  const signIn = async (button) => {
    if (conditional) {
      // A browser refuses a new request while the aborted one is still
      // winding down ("a request is already pending"): wait for its end.
      conditional.controller.abort();
      await conditional.ended;
      conditional = null;
    }
    say(button, "Waiting for your passkey…");
    const options = await post("/accounts/signin/options");
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    const answer = await post("/accounts/signin/verify", { credential: credentialJSON(credential) });
    window.location.assign(answer.redirect);
  };

  const autofill = async () => {
    if (!PublicKeyCredential.isConditionalMediationAvailable) return;
    if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
    const controller = new AbortController();
    const request = (async () => {
      const options = await post("/accounts/signin/options");
      if (controller.signal.aborted) return null;
      return navigator.credentials.get({
        publicKey: requestOptions(options), mediation: "conditional", signal: controller.signal,
      });
    })();
    conditional = { controller, ended: request.catch(() => null) };
    const credential = await request;
    if (!credential) return;
    const answer = await post("/accounts/signin/verify", { credential: credentialJSON(credential) });
    window.location.assign(answer.redirect);
  };

  const signUp = async (form) => {
    const data = new FormData(form);
    say(form, "Creating your passkey…");
    const options = await post("/accounts/signup/options", { display_name: data.get("display_name") });
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    const answer = await post("/accounts/signup/verify", {
      credential: credentialJSON(credential), passkey_name: data.get("passkey_name"),
    });
    window.location.assign(answer.redirect);
  };

  const addPasskey = async (form) => {
    const data = new FormData(form);
    say(form, "Creating your passkey…");
    let options;
    try {
      options = await post("/accounts/passkeys/options");
    } catch (error) {
      if (error.answer && error.answer.reauthenticate) return window.location.assign(error.answer.reauthenticate);
      throw error;
    }
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    await post("/accounts/passkeys/verify", { credential: credentialJSON(credential), name: data.get("name") });
    window.location.reload();
  };

  const reauthenticate = async (button) => {
    say(button, "Waiting for your passkey…");
    const options = await post("/accounts/reauthenticate/options");
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    const answer = await post("/accounts/reauthenticate/verify", { credential: credentialJSON(credential) });
    window.location.assign(answer.redirect);
  };

  const guard = (element, ceremony) => async (event) => {
    event.preventDefault();
    try {
      await ceremony(element);
    } catch (error) {
      say(element, explain(error), "error");
    }
  };

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-passkey-wrong-host]").forEach((el) => { el.hidden = rightHost; });
    document.querySelectorAll("[data-passkey-unsupported]").forEach((el) => {
      el.hidden = supported || !rightHost;
    });
    document.querySelectorAll("[data-passkey-only]").forEach((el) => { el.hidden = !supported; });
    if (!supported) return;

    document.querySelectorAll("[data-passkey-signin]").forEach((el) => el.addEventListener("click", guard(el, signIn)));
    document.querySelectorAll("form[data-passkey-signup]").forEach((el) => el.addEventListener("submit", guard(el, signUp)));
    document.querySelectorAll("form[data-passkey-add]").forEach((el) => el.addEventListener("submit", guard(el, addPasskey)));
    document.querySelectorAll("[data-passkey-reauthenticate]").forEach((el) => el.addEventListener("click", guard(el, reauthenticate)));
    if (document.querySelector("input[autocomplete~=webauthn]")) {
      autofill().catch((error) => say(null, explain(error), "error"));
    }
  });
})();
