/* A confirming action on a scanner screen takes a deliberate gesture: a tap or a click, never a key.
 *
 * A scanner types its code and Enter into whatever has the focus. The confirm button is therefore a plain
 * button (type="button": Enter in a field never submits its form) that sends its form only on a pointer
 * click: a click made from the keyboard (Enter or Space on a focused button) has event.detail 0 and is ignored.
 */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-confirm-tap]");
    if (!button) { return; }
    event.preventDefault();
    if (event.detail < 1) { return; }
    var form = button.form;
    form.querySelector("[name=gesture]").value = "tap";
    form.submit();
  });
})();
