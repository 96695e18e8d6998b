// The new-route page: quicker ticking. The page works without this file: the village
// buttons and the filter are submit buttons the server answers.
(function () {
  "use strict";

  // The same folding as the server's: no accents, no case, đ as d.
  function fold(text) {
    return String(text || "").toLowerCase().replace(/đ/g, "d")
      .normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/\s+/g, " ").trim();
  }

  function visibleBoxes(village) {
    return Array.prototype.filter.call(
      village.querySelectorAll("input[name=people][type=checkbox]"),
      function (box) { return !box.closest("tr").hidden; }
    );
  }

  function refresh(form) {
    var count = form.querySelectorAll("input[name=people]:checked").length +
      form.querySelectorAll("input[type=hidden][name=people]").length;
    var counter = form.querySelector("[data-testid=selected-count]");
    if (counter) { counter.textContent = String(count); }
    form.querySelectorAll("[data-testid=village]").forEach(function (village) {
      var button = village.querySelector("[data-testid=village-toggle]");
      var boxes = visibleBoxes(village);
      var all = boxes.length > 0 && boxes.every(function (box) { return box.checked; });
      button.textContent = all ? button.dataset.unselect : button.dataset.select;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-testid=route-form]");
    if (!form) { return; }

    form.addEventListener("click", function (event) {
      var button = event.target.closest("[data-testid=village-toggle]");
      if (!button) { return; }
      event.preventDefault();  // done here, no round trip
      var boxes = visibleBoxes(button.closest("[data-testid=village]"));
      var all = boxes.every(function (box) { return box.checked; });
      boxes.forEach(function (box) { box.checked = !all; });
      refresh(form);
    });

    form.addEventListener("change", function (event) {
      if (event.target.name === "people") { refresh(form); }
    });

    var filter = form.querySelector("[data-live-filter]");
    if (filter) {
      filter.addEventListener("input", function () {
        var wanted = fold(filter.value);
        form.querySelectorAll("[data-testid=village]").forEach(function (village) {
          var shown = 0;
          village.querySelectorAll("tr[data-search]").forEach(function (row) {
            var match = !wanted || row.dataset.search.indexOf(wanted) >= 0;
            row.hidden = !match;
            if (match) { shown += 1; }
          });
          village.hidden = shown === 0;
        });
        refresh(form);
      });
    }
  });
})();
