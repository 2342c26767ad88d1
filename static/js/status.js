// Pages with unfinished analyses poll their status JSON (which reads the database row) and reload
// once every one of them is done or failed.
(function () {
  "use strict";
  var watched = document.querySelectorAll("[data-status-url]");
  if (!watched.length) { return; }
  var INTERVAL_MS = 1500;
  var pending = watched.length;

  function poll(element) {
    var url = element.getAttribute("data-status-url");
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (row) {
        if (row === null) { setTimeout(function () { poll(element); }, INTERVAL_MS * 4); return; }
        var label = element.querySelector("[data-status]");
        if (label) { label.textContent = row.status; label.className = "state state-" + row.status; }
        var attempts = element.querySelector("[data-attempts]");
        if (attempts && row.attempts) { attempts.textContent = "attempt " + row.attempts; }
        if (row.status === "done" || row.status === "failed") {
          pending -= 1;
          if (pending === 0) { window.location.reload(); }
        } else {
          setTimeout(function () { poll(element); }, INTERVAL_MS);
        }
      })
      .catch(function () { setTimeout(function () { poll(element); }, INTERVAL_MS * 4); });
  }

  Array.prototype.forEach.call(watched, poll);
})();
