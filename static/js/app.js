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

// Search results: the arrow keys move between the search field and the results.
document.addEventListener("keydown", function (event) {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") { return; }
  var links = Array.prototype.slice.call(document.querySelectorAll("a.rowlink"));
  if (!links.length) { return; }
  var search = document.getElementById("q");
  var index = links.indexOf(document.activeElement);
  if (document.activeElement === search && event.key === "ArrowDown") {
    links[0].focus();
  } else if (index >= 0) {
    var next = index + (event.key === "ArrowDown" ? 1 : -1);
    if (next < 0 && search) { search.focus(); } else if (next < links.length) { links[next].focus(); }
  } else {
    return;
  }
  event.preventDefault();
});

// The confirmation's total follows the periods ticked (the server recomputes it anyway).
document.addEventListener("change", function (event) {
  var form = event.target.form;
  if (!form || form.dataset.testid !== "pay-form" || event.target.name !== "entitlements") { return; }
  var total = 0;
  form.querySelectorAll("input[name=entitlements]:checked").forEach(function (box) {
    total += parseInt(box.dataset.amount, 10) || 0;
  });
  var text = String(total).replace(/\B(?=(\d{3})+(?!\d))/g, ".") + " đ";
  var digits = form.querySelector("[data-testid=total-digits]");
  var words = form.querySelector("[data-testid=total-words]");
  if (digits) { digits.textContent = text; }
  if (words && digits) { words.textContent = digits.dataset.wordsStale; }
  var button = form.querySelector("[data-testid=pay-submit]");
  if (button) { button.disabled = total === 0; }
  var label = form.querySelector("[data-testid=pay-total]");
  if (label) { label.textContent = text; }
});

// A button that may be used only after a wait (an OTP resend): disabled, counting down.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-wait]").forEach(function (button) {
    var left = parseInt(button.dataset.wait, 10) || 0;
    var label = button.querySelector("[data-wait-label]");
    if (left <= 0) { return; }
    button.disabled = true;
    var tick = setInterval(function () {
      left -= 1;
      if (label) { label.textContent = left > 0 ? label.dataset.waitLabel.replace("%s", left) : ""; }
      if (left <= 0) { clearInterval(tick); button.disabled = false; }
    }, 1000);
  });
});
