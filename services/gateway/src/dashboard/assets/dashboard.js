// imgmesh dashboard: progressive enhancement only. Every page works without
// this script; it saves reloads.
//
// A deploy status section that is still running carries data-poll, the path
// of its own fragment. This fetches that fragment every second and swaps it
// in, until the section it gets back no longer asks to be polled.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var RETRY_MS = 3000;

  function poll() {
    var section = document.querySelector("#deploy-status[data-poll]");
    if (!section) {
      return;
    }
    fetch(section.getAttribute("data-poll"), {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
      redirect: "error"
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var template = document.createElement("template");
        template.innerHTML = html.trim();
        var fresh = template.content.firstElementChild;
        if (fresh && fresh.id === "deploy-status") {
          section.replaceWith(fresh);
        }
        window.setTimeout(poll, POLL_MS);
      })
      .catch(function () {
        window.setTimeout(poll, RETRY_MS);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    window.setTimeout(poll, POLL_MS);
  });
})();
