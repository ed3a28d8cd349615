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

// Idle timeout: warn before the server logs us out; "Stay logged in" is one small request.
(function () {
  var box = document.getElementById("idle-warning");
  if (!box) return;
  var idle = Number(box.dataset.idleSeconds) * 1000, warn = Number(box.dataset.warnSeconds) * 1000;
  var text = box.querySelector("p"), button = box.querySelector("button"), deadline;
  function restart() { deadline = Date.now() + idle; box.hidden = true; }
  function tick() {
    var left = deadline - Date.now();
    if (left > warn) return;
    text.textContent = left > 0
      ? box.dataset.message.replace("{minutes}", String(Math.ceil(left / 60000)))
      : box.dataset.expired;
    button.hidden = left <= 0;
    box.hidden = false;
  }
  // Any request but a poll counts as activity on the server too.
  document.addEventListener("htmx:afterRequest", function (event) {
    var headers = (event.detail.requestConfig && event.detail.requestConfig.headers) || {};
    var status = event.detail.xhr && event.detail.xhr.status;
    if (!headers["X-Clinic-Poll"] && status && status !== 401) restart();
  });
  restart();
  setInterval(tick, 1000);
})();

// Letters: a Print button (shown only where it works, i.e. with JavaScript).
function enablePrint(root) {
  root.querySelectorAll("[data-print][hidden]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
}
enablePrint(document);
document.addEventListener("htmx:load", function (event) { enablePrint(event.detail.elt); });
