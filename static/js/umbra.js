// Keyboard shortcuts: any element with data-key="x" is clicked when x is pressed
// (outside text inputs). Kept in a static file: the CSP forbids inline script.
(function () {
  "use strict";
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    // Keys are locked while a form's request is in flight: the next card is not on screen yet,
    // so a fast second press must not act on whatever happens to be there.
    if (document.querySelector("form.htmx-request")) { ev.preventDefault(); return; }
    var key = ev.key.toLowerCase();
    var target = document.querySelector('[data-key="' + CSS.escape(key) + '"]:not([disabled])');
    if (target) {
      ev.preventDefault();
      target.click();
    }
  });
  // Confirmation for bulk actions, without inline handlers.
  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  }, true);
  // Fields that apply only to some choice of another field: data-show-if="name=value|value".
  // The field's box gets the hidden attribute otherwise (no inline style: strict CSP).
  function applyShowIf() {
    document.querySelectorAll("[data-show-if]").forEach(function (el) {
      var rule = el.getAttribute("data-show-if").split("=");
      var form = el.form || el.closest("form");
      var ctrl = form && form.elements.namedItem(rule[0]);
      if (!ctrl) return;
      var value = ctrl.type === "checkbox" ? String(ctrl.checked) : ctrl.value;
      var box = el.closest(".field") || el.closest("p") || el;
      box.hidden = rule[1].split("|").indexOf(value) < 0;
    });
  }
  document.addEventListener("change", applyShowIf);
  document.addEventListener("DOMContentLoaded", applyShowIf);
  document.addEventListener("htmx:afterSettle", applyShowIf);
})();
