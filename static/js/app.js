// Raccord: only what htmx does not do itself: showing toasts and letting them fade.
(function () {
  "use strict";

  // A message that is not an error stays at least this long, and longer while the pointer or the
  // focus is on it; an error stays until the user closes it (its button « Fermer », or Escape).
  var TOAST_MS = 8000;

  function region() {
    return document.getElementById("toasts");
  }

  function closeToast(toast) {
    if (!toast.parentNode) { return; }
    var hadFocus = toast.contains(document.activeElement);
    toast.classList.add("toast--leaving");
    window.setTimeout(function () {
      toast.remove();
      var next = hadFocus && region() && region().querySelector(".toast:not(.toast--leaving) .toast__close");
      if (next) { next.focus(); }
    }, 300);
  }

  // Counts down only while the toast is neither hovered nor holding the focus.
  function dismissLater(toast) {
    if (toast.classList.contains("toast--error")) { return; }
    var left = TOAST_MS, started = 0, timer = null;
    function run() {
      if (timer || toast.matches(":hover") || toast.contains(document.activeElement)) { return; }
      started = Date.now();
      timer = window.setTimeout(function () { closeToast(toast); }, left);
    }
    function pause() {
      if (!timer) { return; }
      window.clearTimeout(timer);
      timer = null;
      left = Math.max(left - (Date.now() - started), 1000);
    }
    toast.addEventListener("mouseenter", pause);
    toast.addEventListener("focusin", pause);
    toast.addEventListener("mouseleave", function () { window.setTimeout(run, 0); });
    toast.addEventListener("focusout", function () { window.setTimeout(run, 0); });
    run();
  }

  function showToast(message, level) {
    var box = region();
    if (!box || !message) { return; }
    var error = level === "error";
    var toast = document.createElement("div");
    toast.className = "toast toast--" + (level || "info");
    var text = document.createElement("span");
    text.className = "toast__text";
    text.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "toast__close";
    close.setAttribute("aria-label", box.getAttribute("data-close-label") || "Fermer");
    close.textContent = "\u00d7";
    toast.appendChild(text);
    toast.appendChild(close);
    (document.getElementById(error ? "toasts-alertes" : "toasts-messages") || box).appendChild(toast);
    dismissLater(toast);
  }

  document.addEventListener("click", function (event) {
    var close = event.target.closest && event.target.closest(".toast__close");
    if (close) { closeToast(close.closest(".toast")); }
  });

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

  // A change nobody in this browser started (a webhook from the software, the hourly refresh): the
  // dossier's pages ask every few seconds, only while the tab is visible, whether it changed since they
  // were rendered (#veille holds that version; it is itself a live region, so it follows each update).
  var watchTimer = null;
  function watchDossier() {
    var watch = document.getElementById("veille");
    if (!watch || document.visibilityState !== "visible" || !window.fetch) { return; }
    window.fetch(watch.getAttribute("data-changes-url"), {
      headers: { "If-None-Match": "\"" + watch.getAttribute("data-version") + "\"", "HX-Request": "true" },
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual"
    }).then(function (response) {
      if (response.status === 401 || response.status === 404 || response.type === "opaqueredirect") {
        // The session ended, or the dossier is no longer this person's to see: the page says so
        // itself (the login page with why, or « Page introuvable ») rather than stay as it was.
        window.clearInterval(watchTimer);
        window.location.reload();
        return;
      }
      if (response.status !== 200) { return; }
      var version = (response.headers.get("ETag") || "").replace(/"/g, "");
      var current = document.getElementById("veille");
      if (current && version) { current.setAttribute("data-version", version); }
      if (window.htmx) { window.htmx.trigger(document.body, "raccord:integration-changed"); }
    }).catch(function () { /* offline for a moment: the next tick asks again */ });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var watch = document.getElementById("veille");
    if (!watch) { return; }
    var every = Math.max(2, parseFloat(watch.getAttribute("data-every")) || 5);
    watchTimer = window.setInterval(watchDossier, every * 1000);
    document.addEventListener("visibilitychange", watchDossier);
  });

  // The menus and details the user opened stay open when their region is replaced.
  var opened = [];
  var menusOpened = [];

  document.addEventListener("htmx:configRequest", function (event) {
    if (!isListener(event)) { return; }
    // A region holding a form the user is filling in is left as it is: nothing typed is ever lost.
    var regions = Array.prototype.filter.call(document.querySelectorAll("[data-live][id]"), function (region) {
      return !Array.prototype.some.call(region.querySelectorAll("form"), isDirty);
    });
    if (!regions.length) { event.preventDefault(); return; }
    event.detail.path = window.location.pathname + window.location.search;
    // The page as a reload would give it, not the fragment an htmx request to that address gets.
    delete event.detail.headers["HX-Request"];
    event.detail.elt.setAttribute("hx-select-oob", regions.map(function (region) { return region.id; }).join(","));
  });

  // What is open is read when the answer is about to be swapped in, not when it was asked for: a menu
  // opened while the page was being fetched stays open too.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!isListener(event)) { return; }
    opened = Array.prototype.map.call(document.querySelectorAll("[data-live] details[open][id]"), function (d) {
      return d.id;
    });
    menusOpened = openMenus().filter(function (menu) { return menu.id && menu.closest("[data-live]"); })
      .map(function (menu) {
        var focused = menuItems(menu).indexOf(document.activeElement);
        return { id: menu.id, focused: focused, onButton: menuButton(menu) === document.activeElement };
      });
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (!isListener(event)) { return; }
    opened.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) { details.open = true; }
    });
    opened = [];
    menusOpened.forEach(function (state) {
      var menu = document.getElementById(state.id);
      if (!menu) { return; }
      var hadFocus = state.focused >= 0;
      var active = document.activeElement;
      openMenu(menu, hadFocus ? state.focused : 0);
      if (!hadFocus) {
        if (state.onButton) { menuButton(menu).focus(); } else if (active && active.focus) { active.focus(); }
      }
    });
    menusOpened = [];
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

  // On a narrow screen the dossier's menu and the settings' menu fold behind a button: its
  // aria-expanded says whether the menu shows (the stylesheet hides it otherwise). Listened to on the
  // document, so it works on any page and after any swap, without a reload.
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest(".collapse-toggle");
    if (!toggle) { return; }
    toggle.setAttribute("aria-expanded", toggle.getAttribute("aria-expanded") === "true" ? "false" : "true");
  });
  // Esc in an open folded menu closes it and brings the focus back to its button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var region = event.target.closest && event.target.closest(".collapsible[id]");
    var toggle = region && document.querySelector('.collapse-toggle[aria-controls="' + region.id + '"]');
    if (toggle && toggle.offsetParent !== null && toggle.getAttribute("aria-expanded") === "true") {
      toggle.setAttribute("aria-expanded", "false");
      toggle.focus();
    }
  });

  // Menu buttons ('Gérer'), the WAI-ARIA menu button pattern: a button (aria-haspopup="menu") that
  // opens a role=menu list. Enter, Space or ↓ open it on its first item (↑ on its last); ↑ ↓ Home End
  // move; Escape closes it and gives the focus back to the button; Tab or a click elsewhere closes it.
  // Listened to on the document, so a menu swapped in by htmx works as it comes.
  function menuButton(menu) { return menu.querySelector("[aria-haspopup=menu]"); }
  function menuList(menu) { return menu.querySelector("[role=menu]"); }
  function menuItems(menu) {
    return Array.prototype.filter.call(menuList(menu).querySelectorAll("[role=menuitem]"), function (item) {
      return !item.disabled && item.getAttribute("aria-disabled") !== "true";
    });
  }
  function isOpen(menu) { return menuButton(menu).getAttribute("aria-expanded") === "true"; }

  function openMenu(menu, which) {
    menuButton(menu).setAttribute("aria-expanded", "true");
    menuList(menu).hidden = false;
    var items = menuItems(menu);
    var item = typeof which === "number" ? items[Math.min(which, items.length - 1)]
      : (which === "last" ? items[items.length - 1] : items[0]);
    if (item) { item.focus(); }
  }

  function closeMenu(menu, giveFocusBack) {
    if (!isOpen(menu)) { return; }
    menuButton(menu).setAttribute("aria-expanded", "false");
    menuList(menu).hidden = true;
    if (giveFocusBack) { menuButton(menu).focus(); }
  }

  function openMenus() {
    return Array.prototype.filter.call(document.querySelectorAll("[data-menu]"), isOpen);
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var menu = target.closest && target.closest("[data-menu]");
    openMenus().forEach(function (other) { if (other !== menu) { closeMenu(other, false); } });
    if (!menu) { return; }
    if (target.closest("[aria-haspopup=menu]")) {
      if (isOpen(menu)) { closeMenu(menu, false); } else { openMenu(menu, "first"); }
    } else if (target.closest("[role=menuitem]")) {
      // Choosing an item closes the menu; what the item opens (a dialog) gives the focus back to 'Gérer'.
      closeMenu(menu, true);
    }
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var menu = target.closest && target.closest("[data-menu]");
    if (!menu) { return; }
    var onButton = !!target.closest("[aria-haspopup=menu]");
    if (onButton) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        openMenu(menu, event.key === "ArrowUp" ? "last" : "first");
      } else if (event.key === "Escape" && isOpen(menu)) {
        event.preventDefault();
        closeMenu(menu, true);
      }
      return;
    }
    var items = menuItems(menu);
    var at = items.indexOf(target);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      var step = event.key === "ArrowDown" ? 1 : -1;
      items[(at + step + items.length) % items.length].focus();
    } else if (event.key === "Home" || event.key === "End") {
      event.preventDefault();
      items[event.key === "Home" ? 0 : items.length - 1].focus();
    } else if (event.key === "Escape") {
      event.preventDefault();
      closeMenu(menu, true);
    } else if (event.key === "Tab") {
      // The focus goes on from 'Gérer' to what follows the menu.
      closeMenu(menu, true);
    } else if (event.key === " " && target.tagName === "A") {
      event.preventDefault();
      target.click();
    }
  });

  // Search results say how many they are, in the page's polite live region (« 12 résultats »). The
  // region stays in place and only its text changes, which is what screen readers announce.
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    if (!root || root === document.body || !root.querySelectorAll) { return; }
    var found = root.matches("[data-announce]") ? root : root.querySelector("[data-announce]");
    var live = document.getElementById("annonce-recherche");
    if (!found || !live) { return; }
    live.textContent = "";
    window.setTimeout(function () { live.textContent = found.getAttribute("data-announce"); }, 100);
  });

  // Escape, anywhere else, closes the latest message (an error stays until then).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented || document.querySelector("dialog[open]")) { return; }
    var box = region();
    var toasts = box ? box.querySelectorAll(".toast:not(.toast--leaving)") : [];
    if (toasts.length) { closeToast(toasts[toasts.length - 1]); }
  });

  // A dialog the server sent (data-modal) opens as a modal: focus moves into it, Esc closes it, and the
  // focus goes back to what opened it (or, if a live region replaced that, to its successor, by id).
  document.addEventListener("htmx:load", function (event) {
    var root = event.detail.elt;
    var dialog = root && root.matches && root.matches("dialog[data-modal]")
      ? root : (root && root.querySelector ? root.querySelector("dialog[data-modal]") : null);
    if (dialog && !dialog.open && dialog.showModal) {
      var opener = document.activeElement;
      var openerId = opener && opener.id;
      dialog.addEventListener("close", function () {
        dialog.remove();
        var back = opener && document.contains(opener) ? opener : (openerId && document.getElementById(openerId));
        if (back && back.focus) { back.focus(); }
      });
      dialog.showModal();
    }
  });

  // « Tout sélectionner sur cette page »: a box (data-select-all="<name>") ticks or unticks the boxes
  // of that name in its form; it shows whether all, some (mixed) or none of them are ticked.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box || !box.form || box.type !== "checkbox") { return; }
    var all = box.form.querySelector("[data-select-all]");
    if (!all) { return; }
    var name = all.getAttribute("data-select-all");
    var boxes = Array.prototype.filter.call(box.form.elements, function (e) { return e.name === name && e.type === "checkbox"; });
    if (box === all) {
      boxes.forEach(function (each) { each.checked = all.checked; });
      return;
    }
    if (box.name !== name) { return; }
    var ticked = boxes.filter(function (each) { return each.checked; }).length;
    all.checked = ticked === boxes.length && ticked > 0;
    all.indeterminate = ticked > 0 && ticked < boxes.length;
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
