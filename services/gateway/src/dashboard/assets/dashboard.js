// imgmesh dashboard: progressive enhancement only. Every page works without
// this script; it saves reloads and checks the subdomain while it is typed.
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

  // The New Source wizard's subdomain field carries data-check, the path
  // that says whether another Source has the subdomain typed; the answer
  // (plain text) goes into #subdomain-check as the user types.
  var CHECK_DELAY_MS = 250;

  function watchSubdomain() {
    var input = document.querySelector("input[data-check]");
    var output = document.getElementById("subdomain-check");
    if (!input || !output) {
      return;
    }
    var timer = null;
    var latest = 0;
    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        latest += 1;
        var asked = latest;
        var url = input.getAttribute("data-check") + "?subdomain=" +
          encodeURIComponent(input.value.trim());
        fetch(url, { credentials: "same-origin", redirect: "error" })
          .then(function (response) {
            return response.ok ? response.text() : "";
          })
          .then(function (text) {
            if (asked === latest) {
              output.textContent = text;
            }
          })
          .catch(function () {});
      }, CHECK_DELAY_MS);
    });
  }

  // The image sandbox's form (#sandbox) carries data-fragment: as its
  // controls change, the result section is fetched again (debounced) with
  // the form's fields and fragment=1 and swapped in; the address bar keeps
  // the query so a reload shows the same render.
  var SANDBOX_DELAY_MS = 400;

  function watchSandbox() {
    var form = document.getElementById("sandbox");
    if (!form) {
      return;
    }
    var timer = null;
    var latest = 0;
    function refresh() {
      var path = form.querySelector("input[name=path]");
      if (!path || path.value.trim() === "") {
        return;
      }
      latest += 1;
      var asked = latest;
      var query = new URLSearchParams(new FormData(form)).toString();
      fetch(form.getAttribute("data-fragment") + "?" + query + "&fragment=1", {
        credentials: "same-origin",
        redirect: "error"
      })
        .then(function (response) {
          return response.text();
        })
        .then(function (html) {
          if (asked !== latest) {
            return;
          }
          var template = document.createElement("template");
          template.innerHTML = html.trim();
          var fresh = template.content.firstElementChild;
          var section = document.getElementById("sandbox-result");
          if (fresh && section && fresh.id === "sandbox-result") {
            section.replaceWith(fresh);
            window.history.replaceState(null, "", "?" + query);
          }
        })
        .catch(function () {});
    }
    function changed() {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, SANDBOX_DELAY_MS);
    }
    form.addEventListener("input", changed);
    form.addEventListener("change", changed);
  }

  // The Assets page's drop zone (#drop-zone) carries data-upload (the
  // upload route), data-csrf (sent as X-CSRF-Token), data-preview and
  // data-sandbox. A dropped or chosen file is sent with XMLHttpRequest so
  // its progress fills #upload-progress; each uploaded file is listed with
  // a thumbnail rendered by imgmesh.
  function watchUploads() {
    var zone = document.getElementById("drop-zone");
    if (!zone) {
      return;
    }
    var input = document.getElementById("upload-file");
    var keyInput = document.getElementById("upload-key");
    var progress = document.getElementById("upload-progress");
    var result = document.getElementById("upload-result");
    var list = document.getElementById("uploaded");

    function uploaded(key) {
      var query = "?path=" + encodeURIComponent(key);
      var item = document.createElement("li");
      var image = document.createElement("img");
      image.src = zone.getAttribute("data-preview") + query + "&w=120&h=120&fit=crop";
      image.alt = key;
      image.width = 120;
      image.height = 120;
      var link = document.createElement("a");
      link.href = zone.getAttribute("data-sandbox") + query;
      link.textContent = key;
      item.appendChild(image);
      item.appendChild(link);
      list.appendChild(item);
    }

    function send(file) {
      var key = keyInput.value.trim() || file.name;
      var request = new XMLHttpRequest();
      request.open("POST", zone.getAttribute("data-upload") + "?key=" + encodeURIComponent(key));
      request.setRequestHeader("X-CSRF-Token", zone.getAttribute("data-csrf"));
      if (file.type) {
        request.setRequestHeader("Content-Type", file.type);
      }
      progress.value = 0;
      result.textContent = "Uploading " + key + "…";
      request.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          progress.value = Math.round((100 * event.loaded) / event.total);
        }
      };
      request.onload = function () {
        result.textContent = request.responseText;
        if (request.status === 201) {
          progress.value = 100;
          uploaded(key.replace(/^\/+/, ""));
        }
      };
      request.onerror = function () {
        result.textContent = "The upload failed: the connection broke off.";
      };
      request.send(file);
    }

    // With the script the form is sent by XMLHttpRequest (for the
    // progress bar); without it the browser posts it as multipart.
    document.getElementById("upload-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (input.files && input.files.length > 0) {
        send(input.files[0]);
      } else {
        result.textContent = "Choose a file first.";
      }
    });
    zone.addEventListener("dragover", function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
    zone.addEventListener("dragleave", function () {
      zone.classList.remove("dragging");
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (event.dataTransfer && event.dataTransfer.files.length > 0) {
        send(event.dataTransfer.files[0]);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    watchSubdomain();
    watchSandbox();
    watchUploads();
    window.setTimeout(poll, POLL_MS);
  });
})();
