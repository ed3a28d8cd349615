// Small behaviours htmx does not cover. No eval, no inline script (the CSP forbids both).
(function () {
  "use strict";
  function region() { return document.getElementById("flashes"); }
  function show(category, text) {
    var box = region();
    if (!box) return;
    var p = document.createElement("p");
    p.className = "flash flash-" + category;
    p.textContent = text;
    box.replaceChildren(p);
  }
  function app() { return document.getElementById("app"); }

  // Messages from the server travel in an HX-Trigger "flash" event.
  document.addEventListener("flash", function (event) {
    var messages = event.detail && event.detail.value;
    (messages || []).forEach(function (m) { show(m.category, m.message); });
  });
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    if (!event.detail.xhr.getResponseHeader("HX-Trigger") && status !== 401) {
      show("error", app().dataset.errorMessage);
    }
  });
  document.addEventListener("htmx:sendError", function () {
    show("error", app().dataset.offlineMessage);
  });

  // A submitted form's buttons stay pressed while its request runs: a second press sends
  // nothing. (Requests a field makes, such as a check on blur, leave the buttons alone.)
  function buttons(event) {
    var elt = event.detail.elt;
    if (elt.tagName === "BUTTON") return [elt];
    return elt.tagName === "FORM" ? elt.querySelectorAll("button") : [];
  }
  document.addEventListener("htmx:beforeSend", function (event) {
    buttons(event).forEach(function (b) { b.disabled = true; });
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    buttons(event).forEach(function (b) { b.disabled = false; });
  });
})();

// Referrals: a polled region does not refresh while an inline form in it is open.
document.addEventListener("htmx:confirm", function (event) {
  var el = event.detail.elt;
  if (el.hasAttribute && el.hasAttribute("data-poll") && el.querySelector("form.inline")) {
    event.preventDefault();
  }
});
