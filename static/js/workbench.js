// Workbench helpers (loaded by the labeling/review pages; umbra.js owns the data-key shortcuts).
// Kept in a static file: the CSP forbids inline script.
(function () {
  "use strict";
  // A category radio picked with the mouse keeps focus, and umbra.js ignores keys typed into
  // inputs; give focus back to the page so h/u/s/z keep working.
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el && el.type === "radio" && el.closest(".label-form")) el.blur();
  });
  // After a card is swapped in, scroll it into view so the next item is where the eyes are.
  document.addEventListener("htmx:afterSwap", function (ev) {
    var card = ev.target && ev.target.id === "labeling-card" ? ev.target : null;
    if (card && card.scrollIntoView) card.scrollIntoView({ block: "nearest" });
    showActiveReviewCard();
  });
  // The review page has one active card: keep it inside the viewport (on load and after each swap).
  function showActiveReviewCard() {
    var active = document.querySelector(".review-card.active");
    if (!active || !active.getBoundingClientRect) return;
    var r = active.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight - 120) active.scrollIntoView({ block: "start" });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showActiveReviewCard);
  else showActiveReviewCard();
})();
