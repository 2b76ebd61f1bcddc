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

// Offer to show times in the browser's own zone when it differs from the preference
// (templates/portal/_timezone_offer.html); the form posts to Preferences.
(function () {
  const UTC = ["UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"];
  function offerZone() {
    const offer = document.querySelector("[data-timezone-offer]");
    if (!offer || !window.Intl) {
      return;
    }
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const current = offer.getAttribute("data-current-zone");
    if (!zone || zone === current || (UTC.includes(zone) && UTC.includes(current))) {
      return;
    }
    offer.querySelector("input[name=timezone]").value = zone;
    offer.querySelectorAll("[data-browser-zone]").forEach(function (el) {
      el.textContent = zone;
    });
    offer.hidden = false;
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", offerZone);
  } else {
    offerZone();
  }
})();
