// Raccord: only what htmx does not do itself: showing toasts and letting them fade.
(function () {
  "use strict";

  var TOAST_MS = 6000;

  function region() {
    return document.getElementById("toasts");
  }

  function dismissLater(toast) {
    window.setTimeout(function () {
      toast.classList.add("toast--leaving");
      window.setTimeout(function () { toast.remove(); }, 300);
    }, TOAST_MS);
  }

  function showToast(message, level) {
    var box = region();
    if (!box || !message) { return; }
    var toast = document.createElement("div");
    toast.className = "toast toast--" + (level || "info");
    toast.setAttribute("role", level === "error" ? "alert" : "status");
    toast.textContent = message;
    box.appendChild(toast);
    dismissLater(toast);
  }

  // The server sends: HX-Trigger: {"raccord:toast": {"message": "…", "level": "success"}}
  document.addEventListener("raccord:toast", function (event) {
    var detail = event.detail || {};
    showToast(detail.message, detail.level);
  });

  // Screens that never show an old state (webapp/live.py). When a job ends, the server sends the
  // event "raccord:integration-changed"; the page's listener (#mise-a-jour) then fetches the page it
  // is on, once, and swaps in every region marked data-live, by id.
  var LISTENER = "mise-a-jour";

  function isListener(event) {
    return event.detail && event.detail.elt && event.detail.elt.id === LISTENER;
  }

  // Whether a form holds what the user typed, ticked or chose and has not saved.
  function isDirty(form) {
    return Array.prototype.some.call(form.elements, function (field) {
      if (field.type === "hidden" || field.type === "submit" || field.type === "button") { return false; }
      if (field.type === "checkbox" || field.type === "radio") { return field.checked !== field.defaultChecked; }
      if (field.options) {
        return Array.prototype.some.call(field.options, function (o) { return o.selected !== o.defaultSelected; });
      }
      return field.value !== field.defaultValue;
    });
  }

  // Other tabs of this browser hear of the change too (their pages would otherwise stay as they were).
  var channel = window.BroadcastChannel ? new window.BroadcastChannel("raccord") : null;
  document.addEventListener("raccord:integration-changed", function (event) {
    if (channel && !(event.detail && event.detail.fromOtherTab)) { channel.postMessage("changed"); }
  });
  if (channel) {
    channel.onmessage = function () {
      if (window.htmx) { window.htmx.trigger(document.body, "raccord:integration-changed", { fromOtherTab: true }); }
    };
  }

  // The menus and details the user opened stay open when their region is replaced.
  var opened = [];

  document.addEventListener("htmx:configRequest", function (event) {
    if (!isListener(event)) { return; }
    // A region holding a form the user is filling in is left as it is: nothing typed is ever lost.
    var regions = Array.prototype.filter.call(document.querySelectorAll("[data-live][id]"), function (region) {
      return !Array.prototype.some.call(region.querySelectorAll("form"), isDirty);
    });
    if (!regions.length) { event.preventDefault(); return; }
    opened = Array.prototype.map.call(document.querySelectorAll("[data-live] details[open][id]"), function (d) {
      return d.id;
    });
    event.detail.path = window.location.pathname + window.location.search;
    // The page as a reload would give it, not the fragment an htmx request to that address gets.
    delete event.detail.headers["HX-Request"];
    event.detail.elt.setAttribute("hx-select-oob", regions.map(function (region) { return region.id; }).join(","));
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (!isListener(event)) { return; }
    opened.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) { details.open = true; }
    });
    opened = [];
  });

  // The messages the script shows, in the interface's language: written by the page (base.html).
  function message(name) {
    return document.body.getAttribute("data-message-" + name) || "";
  }

  // 'Publier' on an invoice's page while its coding has changes not saved: said, and not sent.
  document.addEventListener("htmx:confirm", function (event) {
    var guard = event.detail.elt && event.detail.elt.getAttribute && event.detail.elt.getAttribute("data-unsaved-guard");
    var form = guard ? document.querySelector(guard) : null;
    if (form && isDirty(form)) {
      event.preventDefault();
      showToast(message("unsaved"), "error");
    }
  });

  // A failed htmx request must not fail silently (the listener's own fetch is in the background: the
  // next change, or a reload, shows the page as it is).
  document.addEventListener("htmx:responseError", function (event) {
    if (isListener(event)) { return; }
    var xhr = event.detail.xhr;
    var status = xhr ? xhr.status : 0;
    if (status === 401) { return; }
    // The server already said why, in its own toast (a read-only view refusing an action, say).
    var trigger = xhr ? xhr.getResponseHeader("HX-Trigger") : null;
    if (trigger && trigger.indexOf("raccord:toast") !== -1) { return; }
    showToast(message(status === 429 ? "too-many" : "failed"), "error");
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (isListener(event)) { return; }
    showToast(message("offline"), "error");
  });

  // Choosing an item of a 'Gérer' menu closes the menu.
  document.addEventListener("click", function (event) {
    var item = event.target.closest && event.target.closest(".menu__item");
    var menu = item && item.closest("details.menu");
    if (menu) { menu.open = false; }
  });

  // A dialog the server sent (data-modal) opens as a modal: focus moves into it, Esc closes it.
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    var dialog = root && root.matches && root.matches("dialog[data-modal]")
      ? root : (root && root.querySelector ? root.querySelector("dialog[data-modal]") : null);
    if (dialog && !dialog.open && dialog.showModal) {
      dialog.addEventListener("close", function () { dialog.remove(); });
      dialog.showModal();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // htmx has set the page up by now (its own DOMContentLoaded listener came first). What was typed
    // into a search box before that, on a slow machine, still runs its search ("search" is the
    // trigger htmx fires without comparing to the value it found when it set the box up).
    Array.prototype.forEach.call(
      document.querySelectorAll("input[type=search]"),
      function (input) {
        if (input.value !== input.defaultValue && window.htmx) { window.htmx.trigger(input, "search"); }
      }
    );
    var box = region();
    if (!box) { return; }
    Array.prototype.forEach.call(box.querySelectorAll(".toast"), dismissLater);
  });
})();
