// The console's only script of its own: confirmations, and live overview tiles over server-sent events.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  function liveTiles() {
    var tiles = document.getElementById("tiles");
    if (!tiles || !window.EventSource) return;
    var source = new EventSource(tiles.getAttribute("data-stream"));
    source.addEventListener("tiles", function (event) {
      tiles.innerHTML = event.data;
      tiles.setAttribute("data-updated", String(Date.now()));
    });
  }
  document.addEventListener("DOMContentLoaded", liveTiles);
})();
