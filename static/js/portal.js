// Small behaviours without inline script (the CSP forbids it).
document.addEventListener("click", function (event) {
  const target = event.target.closest("[data-confirm]");
  if (target && !window.confirm(target.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});

// A select marked data-reload-param reloads the page with its value in the query string:
// choosing a database target lists that target's tables (the server checks the choice).
document.addEventListener("change", function (event) {
  const select = event.target.closest("[data-reload-param]");
  if (!select) {
    return;
  }
  const url = new URL(window.location.href);
  url.searchParams.set(select.getAttribute("data-reload-param"), select.value);
  window.location.assign(url.toString());
});
