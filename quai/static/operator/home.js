// Operator menu: pressing a screen's number opens it (a file of its own, as the Content-Security-Policy allows no
// inline script).
document.addEventListener("keydown", function (event) {
  if (event.target.closest("input, textarea, select")) return;
  var tile = document.querySelector('.menu-tile[data-key="' + event.key + '"]');
  if (tile) { event.preventDefault(); window.location.assign(tile.href); }
});
