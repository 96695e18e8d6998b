// Payout terminal: small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // A form is sent once: a double-click or an impatient second press does nothing.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset.submitted === "1") {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "1";
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    buttons.forEach(function (button) {
      // Keep the pressed button's name/value in the submission before disabling it.
      if (event.submitter === button && button.name) {
        var hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = button.name;
        hidden.value = button.value;
        form.appendChild(hidden);
      }
      button.disabled = true;
    });
  }, true);

  // The page's main field takes focus even when the browser kept focus elsewhere.
  document.addEventListener("DOMContentLoaded", function () {
    var target = document.querySelector("[autofocus]");
    if (target && document.activeElement !== target) {
      target.focus();
    }
  });

  // A page restored from the back/forward cache must not keep disabled buttons.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      document.querySelectorAll("form[data-submitted]").forEach(function (form) {
        delete form.dataset.submitted;
        form.querySelectorAll("button[disabled]").forEach(function (b) { b.disabled = false; });
      });
    }
  });
})();

// Forms marked class="confirm" ask before they are sent (closing a period, reversing...).
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.classList && form.classList.contains("confirm") && form.dataset.confirm) {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
      delete form.dataset.submitted;
      form.querySelectorAll("button[disabled]").forEach(function (b) { b.disabled = false; });
    }
  }
}, false);
