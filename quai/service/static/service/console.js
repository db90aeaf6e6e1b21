/* Agent console keyboard: j/k move in the queue, Enter opens, / filters; r answers, n notes, a assigns, Escape leaves
   a field. Macro buttons put their text (placeholders already filled) into the answer. */
(function () {
  "use strict";
  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
  }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("#queue tr.row")); }
  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row) { row.classList.remove("selected"); });
    all[index].classList.add("selected");
    all[index].focus();
  }
  function current() { return rows().findIndex(function (row) { return row.classList.contains("selected"); }); }
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var key = event.key;
    if (document.querySelector("[data-keys=queue]")) {
      if (key === "j") { select(current() + 1); event.preventDefault(); }
      else if (key === "k") { select(current() - 1); event.preventDefault(); }
      else if (key === "Enter" && current() >= 0) { window.location = rows()[current()].dataset.href; }
      else if (key === "/") { var f = document.querySelector(".filters select"); if (f) { f.focus(); event.preventDefault(); } }
    } else if (document.querySelector("[data-keys=ticket]")) {
      var map = { r: "reply-body", n: "note-body" };
      if (map[key]) { document.getElementById(map[key]).focus(); event.preventDefault(); }
      else if (key === "a") { var b = document.getElementById("assign-me"); if (b) { b.click(); } }
      else if (key === "q") { window.location = document.querySelector("a[accesskey=q]").href; }
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button.macro") : null;
    if (!button) { return; }
    var area = document.getElementById(button.dataset.target);
    area.value = (area.value ? area.value + "\n\n" : "") + button.dataset.macroText;
    area.focus();
  });
  document.addEventListener("click", function (event) {
    var row = event.target.closest ? event.target.closest("#queue tr.row") : null;
    if (row && event.target.tagName !== "A") { window.location = row.dataset.href; }
  });
})();
