// Operator menu: pressing a screen's number (or letter) opens it (a file of its own, as the Content-Security-Policy
// allows no inline script). A key held with Ctrl, Alt or Meta is the browser's (Ctrl+S saves), never a screen's.
document.addEventListener("keydown", function (event) {
  if (event.target.closest("input, textarea, select")) return;
  if (event.ctrlKey || event.altKey || event.metaKey || event.key.length !== 1) return;
  var tile = document.querySelector('.menu-tile[data-key="' + event.key.toLowerCase() + '"]');
  if (tile) { event.preventDefault(); window.location.assign(tile.href); }
});
