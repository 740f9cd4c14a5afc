// Refund page: posts the form to the server's preview (the refund_preview service) as
// staff type, and shows the HTML it returns. No amounts are computed here.
(function () {
  "use strict";
  var form = document.getElementById("bo-refund-form");
  if (!form) { return; }
  var box = document.getElementById("bo-preview");
  var url = form.getAttribute("data-preview-url");
  var timer = null;
  var seq = 0;

  function preview() {
    var mine = ++seq;
    box.parentNode.classList.add("bo-loading");
    fetch(url, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-Requested-With": "XMLHttpRequest" },
      credentials: "same-origin"
    }).then(function (r) { return r.json(); }).then(function (data) {
      if (mine !== seq) { return; }  // an older answer arriving late
      box.innerHTML = data.html;
      box.parentNode.classList.remove("bo-loading");
      // Show the server's default split as the placeholders of the split inputs.
      var inputs = form.querySelectorAll("input.bo-split");
      inputs.forEach(function (input) {
        var id = input.name.replace("split_", "");
        input.placeholder = (data.allocations && data.allocations[id]) || "0";
      });
      form.setAttribute("data-preview-ready", data.ok ? "yes" : "no");
    }).catch(function () {
      if (mine !== seq) { return; }
      box.parentNode.classList.remove("bo-loading");
      box.innerHTML = '<p class="errornote">The preview could not be loaded. You can still confirm: the refund is checked again on the server.</p>';
    });
  }

  function schedule() {
    form.setAttribute("data-preview-ready", "pending");
    clearTimeout(timer);
    timer = setTimeout(preview, 250);
  }

  form.addEventListener("input", schedule);
  form.addEventListener("change", schedule);

  var fill = document.getElementById("bo-fill-all");
  if (fill) {
    fill.addEventListener("click", function () {
      form.querySelectorAll("input.bo-qty").forEach(function (input) {
        if (!input.disabled) { input.value = input.getAttribute("data-max"); }
      });
      schedule();
    });
  }
  var clear = document.getElementById("bo-clear-all");
  if (clear) {
    clear.addEventListener("click", function () {
      form.querySelectorAll("input.bo-qty").forEach(function (input) { input.value = ""; });
      schedule();
    });
  }
  // A form shown again after an error: preview what it holds.
  var any = Array.prototype.some.call(form.querySelectorAll("input.bo-qty"), function (i) { return i.value; });
  if (any) { schedule(); }

  // One click, one refund: the button is disabled once the form is sent.
  form.addEventListener("submit", function () {
    var button = document.getElementById("bo-confirm");
    setTimeout(function () { button.disabled = true; }, 0);
  });
})();
