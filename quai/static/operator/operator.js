/* Operator screens: the scan field keeps the focus, every answer flashes green/red and beeps. */
(function () {
  "use strict";
  var audio = null;
  window.quaiSounds = [];

  function scanInput() { return document.querySelector("[data-scan]"); }

  function focusScan() {
    var input = scanInput();
    if (input && document.activeElement !== input) { input.focus(); }
  }

  // A short WebAudio beep: one high note when right, two low buzzes when wrong.
  function beep(kind) {
    window.quaiSounds.push(kind);
    document.body.dataset.sound = kind;
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      audio = audio || new Ctx();
      if (audio.state === "suspended") { audio.resume(); }
      var notes = kind === "ok" ? [[1320, 0, 0.12]] : kind === "warn" ? [[660, 0, 0.12], [990, 0.16, 0.12]] : [[200, 0, 0.18], [200, 0.24, 0.3]];
      notes.forEach(function (note) {
        var osc = audio.createOscillator();
        var gain = audio.createGain();
        osc.type = kind === "ok" ? "sine" : "square";
        osc.frequency.value = note[0];
        gain.gain.value = 0.15;
        osc.connect(gain);
        gain.connect(audio.destination);
        var start = audio.currentTime + note[1];
        osc.start(start);
        osc.stop(start + note[2]);
      });
    } catch (e) { /* no sound card: the colour still tells */ }
  }
  window.quaiBeep = beep;

  function flash(kind) {
    var body = document.body;
    body.classList.remove("flash-ok", "flash-error", "flash-warn");
    void body.offsetWidth;
    body.classList.add("flash-" + kind);
    clearTimeout(flash.timer);
    flash.timer = setTimeout(function () { body.classList.remove("flash-" + kind); }, 1200);
  }

  function answered(root) {
    var fb = (root || document).querySelector("[data-result]");
    if (!fb || fb.dataset.seen) { return; }
    fb.dataset.seen = "1";
    var kind = fb.dataset.result;
    beep(kind);
    flash(kind);
    var input = scanInput();
    var task = document.getElementById("task-id");
    if (input && task && input.dataset.placeholderTask) {
      input.placeholder = task.value ? input.dataset.placeholderTask : input.dataset.placeholderIdle;
    }
    if (kind !== "error") {
      // A counted scan starts the next one from scratch: quantity 1, not damaged, not "unexpected".
      var qty = document.querySelector("[data-quantity]");
      if (qty) { qty.value = qty.defaultValue || "1"; }
      document.querySelectorAll("[data-reset-after-scan]").forEach(function (box) { box.checked = false; });
    }
    focusScan();
  }

  // Every refusal is the screen's own answer (red, the error beep, the message that says why), never a browser
  // bubble: a bubble makes no sound, and the scan that triggered it would be lost. The server checks every field.
  function noBrowserValidation(root) {
    (root || document).querySelectorAll("form").forEach(function (form) {
      if (form.querySelector("[data-scan]")) { form.noValidate = true; }
    });
  }

  // A code (location, SKU, lot) never breaks across lines (operator.css keeps it on one); when it is wider than its
  // place, its font shrinks, down to a size still readable, before an ellipsis would cut it.
  var CODES = ".code, .grid .sku, .context .ref, .target .location";
  var SMALLEST = 12;
  function tooWide(el) {
    if (getComputedStyle(el).display !== "inline") { return el.scrollWidth > el.clientWidth + 1; }
    var parent = el.parentElement;
    var style = getComputedStyle(parent);
    var room = parent.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return el.getBoundingClientRect().width > room + 1;
  }
  function fitCodes(root) {
    (root || document).querySelectorAll(CODES).forEach(function (el) {
      el.style.fontSize = "";
      if (!el.title) { el.title = el.textContent.trim(); }
      var size = parseFloat(getComputedStyle(el).fontSize);
      while (size > SMALLEST && tooWide(el)) {
        size -= 1;
        el.style.fontSize = size + "px";
      }
    });
  }
  window.addEventListener("resize", function () { fitCodes(document); });

  var queue = Promise.resolve();
  function sendScan(form, code) {
    if (!form || !window.htmx) { return; }
    if (!form.getAttribute("hx-post")) {
      var field = form.querySelector("[data-scan]");
      field.value = code;
      form.submit();
      return;
    }
    queue = queue.then(function () {
      // The answer to the previous scan may have replaced the form (a screen that swaps its whole panel): send
      // through the form on the page now, with the state that answer left in it.
      var input = scanInput();
      var current = input && input.form && input.form.getAttribute("hx-post") ? input.form : form;
      return window.htmx.ajax("POST", current.getAttribute("hx-post"), {
        source: current,
        target: current.getAttribute("hx-target"),
        swap: "innerHTML",
        values: { code: code }
      });
    }).catch(function () { beep("error"); flash("error"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    noBrowserValidation(document);
    fitCodes(document);
    focusScan();
    answered(document);
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    noBrowserValidation(event.target);
    fitCodes(event.target);
    answered(event.target);
  });
  // Should a form still carry a constraint the browser enforces, its refusal is told like any other.
  document.addEventListener("htmx:validation:halted", function () { beep("error"); flash("error"); focusScan(); });
  document.addEventListener("htmx:sendError", function () { beep("error"); flash("error"); });
  document.addEventListener("htmx:responseError", function () { beep("error"); flash("error"); });

  // Whatever was clicked or tapped, the scanner's keystrokes must land in the scan field.
  document.addEventListener("focusout", function () {
    setTimeout(function () {
      var active = document.activeElement;
      if (!active || active === document.body || active === document.documentElement) { focusScan(); }
    }, 0);
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest("input, button, a, select, textarea, label")) { focusScan(); }
  });

  // A switched toggle hands the focus back to the scan field: the next scan must not land on a checkbox.
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("[data-reset-after-scan]")) { focusScan(); }
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    // Enter in the quantity field goes back to the scan field instead of sending an empty scan.
    if (event.key === "Enter" && target.matches && target.matches("[data-quantity]")) {
      event.preventDefault();
      focusScan();
      return;
    }
    // Enter in the scan field: the code is taken at once and the field emptied, so the scanner can fire the next
    // code while this one is on its way. Scans are sent one after the other, in order, none dropped; the other
    // fields (quantity, toggles, current task) are read when each scan is sent, after the previous answer.
    if (event.key === "Enter" && target.matches && target.matches("[data-scan]")) {
      event.preventDefault();
      var code = target.value.trim();
      target.value = "";
      if (code) { sendScan(target.form, code); }
      return;
    }
    if (event.key === "Escape") {
      var back = document.querySelector("[data-escape-href]");
      if (back) { window.location.href = back.dataset.escapeHref; }
    }
  });
})();
