// Buy buttons send their form once. A second press while the first is on
// its way would be answered "you own it already", and the first answer,
// the one that says what was paid, would never be shown.
"use strict";

(() => {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-buy")) return;
    if (form.dataset.sent) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = "yes";
    const button = form.querySelector("button[type=submit]");
    if (button) {
      button.setAttribute("aria-disabled", "true");
      button.textContent = "Buying…";
    }
  });

  // Coming back to the page from the browser's history shows it as it was
  // left, mid-purchase: make its buttons work again.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    document.querySelectorAll("form[data-buy][data-sent]").forEach((form) => {
      delete form.dataset.sent;
      const button = form.querySelector("button[type=submit]");
      if (button) {
        button.removeAttribute("aria-disabled");
        button.textContent = button.dataset.label || button.textContent;
      }
    });
  });
})();
