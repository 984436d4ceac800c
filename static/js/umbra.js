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
})();
