/* Pack station: the station's pickers submit on change, the label opens once printed, the camera takes the
   parcel's photo. Scanning, beeps and colours are operator.js's. */
(function () {
  "use strict";
  var stream = null;

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; }
    catch (e) { return ""; }
  }

  function say(kind) {
    if (window.quaiBeep) { window.quaiBeep(kind); }
  }

  function stopCamera() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    var box = document.querySelector("[data-camera]");
    if (box) { box.hidden = true; }
  }

  function openLabel(root) {
    var link = (root || document).querySelector("[data-open-label]");
    if (!link || link.dataset.opened) { return; }
    link.dataset.opened = "1";
    // A popup blocker may refuse: the big link stays on the screen for one click.
    try { window.open(link.href, "_blank", "noopener"); } catch (e) { /* the link is there */ }
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-autosubmit]")) { event.target.form.submit(); }
  });

  document.addEventListener("click", function (event) {
    var start = event.target.closest("[data-photo-start]");
    if (start) {
      var box = document.querySelector("[data-camera]");
      var status = document.querySelector("[data-camera-status]");
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
        say("error");
        if (box) { box.hidden = false; status.textContent = start.dataset.noCamera || "No camera."; }
        return;
      }
      box.dataset.url = start.dataset.photoUrl;
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
        stream = s;
        box.hidden = false;
        box.querySelector("video").srcObject = s;
      }).catch(function (err) {
        say("error");
        box.hidden = false;
        status.textContent = String(err && err.message || err);
      });
      return;
    }
    if (event.target.closest("[data-photo-cancel]")) { stopCamera(); return; }
    if (event.target.closest("[data-photo-take]")) {
      var camera = document.querySelector("[data-camera]");
      var video = camera.querySelector("video");
      var canvas = document.createElement("canvas");
      canvas.width = video.videoWidth || 640;
      canvas.height = video.videoHeight || 480;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) {
        fetch(camera.dataset.url, {
          method: "POST", body: blob, credentials: "same-origin",
          headers: { "Content-Type": "image/jpeg", "X-CSRFToken": csrf() }
        }).then(function (response) {
          return response.text().then(function (text) {
            camera.querySelector("[data-camera-status]").textContent = text;
            say(response.ok ? "ok" : "error");
            if (response.ok) {
              stopCamera();
              var badge = document.querySelector(".context .meta");
              if (badge && !document.querySelector("[data-photo-kept]")) {
                var span = document.createElement("span");
                span.className = "badge ok";
                span.dataset.photoKept = "1";
                span.textContent = "✔";
                badge.appendChild(document.createTextNode(" · "));
                badge.appendChild(span);
              }
            }
          });
        }).catch(function () { say("error"); });
      }, "image/jpeg", 0.85);
    }
  });

  document.addEventListener("DOMContentLoaded", function () { openLabel(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    if (!document.querySelector("[data-camera]")) { stopCamera(); }
    openLabel(event.target);
  });
})();
