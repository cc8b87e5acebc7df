/* Attune web UI: keyboard shortcuts, live word-diff preview, drafts kept in localStorage,
   polling for what was learned. Plain JS, no dependencies; every page also works without it. */
(function () {
  "use strict";

  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function sessionExpired(target) {
    if (!target) return;
    var next = encodeURIComponent(location.pathname + location.search);
    target.innerHTML = '<p class="notice" role="alert">Your session has expired. What you typed ' +
      'is kept in this browser. <a href="/login?next=' + next + '">Log in again</a>.</p>';
  }

  // --- drafts: what is typed survives a reload, a lost session or a crash ---------------------
  function draftKey(el) { return "attune:draft:" + el.dataset.draft + ":" + location.pathname; }

  document.querySelectorAll("textarea[data-draft]").forEach(function (el) {
    var key = draftKey(el);
    var saved = null;
    try { saved = localStorage.getItem(key); } catch (e) { /* storage off */ }
    if (saved !== null && saved !== el.value && el.value === el.defaultValue) {
      el.value = saved;
      var note = document.createElement("p");
      note.className = "help draft-note";
      note.textContent = "Restored the draft you had not sent yet.";
      el.insertAdjacentElement("afterend", note);
    }
    el.addEventListener("input", function () {
      try { localStorage.setItem(key, el.value); } catch (e) { /* storage off */ }
    });
    if (el.form) {
      el.form.addEventListener("submit", function (event) {
        var button = event.submitter;
        if (button && button.value === "preview") return;  // still a draft
        try { localStorage.removeItem(key); } catch (e) { /* storage off */ }
      });
    }
  });

  // --- ask form: show the fields of the chosen mode -------------------------------------------
  var modeInputs = document.querySelectorAll("input[name=mode]");
  function showMode() {
    var chosen = document.querySelector("input[name=mode]:checked");
    document.querySelectorAll("[data-mode-section]").forEach(function (section) {
      section.hidden = chosen && section.dataset.modeSection !== chosen.value;
    });
  }
  modeInputs.forEach(function (input) { input.addEventListener("change", showMode); });
  if (modeInputs.length) showMode();

  // --- sample contexts: one click fills the context (and says what it is) ---------------------
  document.querySelectorAll("button[data-sample-text]").forEach(function (button) {
    button.addEventListener("click", function () {
      var form = button.closest("form");
      var context = form.querySelector("textarea[name=context]");
      var source = form.querySelector("select[name=source]");
      context.value = button.dataset.sampleText;
      context.dispatchEvent(new Event("input"));
      if (source) source.value = button.dataset.sampleSource;
      context.focus();
    });
  });

  // --- live word-diff preview of an edit --------------------------------------------------------
  document.querySelectorAll("textarea[data-diff-url]").forEach(function (el) {
    var target = document.getElementById(el.dataset.diffTarget);
    var timer = null, sequence = 0;
    function refresh() {
      var mine = ++sequence;
      var body = new FormData();
      body.append("edited", el.value);
      fetch(el.dataset.diffUrl, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
      }).then(function (response) {
        if (response.status === 401) { sessionExpired(target); return null; }
        return response.json();
      }).then(function (data) {
        if (!data || mine !== sequence) return;
        if (data.html) { target.innerHTML = data.html; return; }
        var errors = (data.errors && data.errors.edited) || [];
        target.innerHTML = "";
        var list = document.createElement("ul");
        list.className = "errorlist";
        errors.forEach(function (e) {
          var li = document.createElement("li"); li.textContent = e.message; list.appendChild(li);
        });
        target.appendChild(list);
      }).catch(function () { /* offline: the Preview button still works */ });
    }
    el.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  });

  // --- what was learned from an edit: poll while the worker infers it ---------------------------
  document.querySelectorAll("[data-poll-url]").forEach(function (box) {
    var tries = 0;
    function poll() {
      if (++tries > 80) return;
      fetch(box.dataset.pollUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          box.innerHTML = data.html;
          if (data.pending) setTimeout(poll, 1500);
        }).catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 800);
  });

  // --- sliders show their value; destructive forms ask first ----------------------------------
  document.querySelectorAll("input[type=range]").forEach(function (input) {
    var out = document.querySelector("output[for='" + input.id + "']");
    if (!out) return;
    var show = function () { out.textContent = Number(input.value).toFixed(1); };
    input.addEventListener("input", show); show();
  });
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // --- keyboard shortcuts (documented on each page; "?" shows them) ---------------------------
  var dialog = document.getElementById("shortcuts");
  function typing(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && !["button", "submit", "radio", "checkbox", "range"].includes(el.type)));
  }
  document.addEventListener("keydown", function (event) {
    var active = document.activeElement;
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      var form = active && active.form;
      var save = form && (form.querySelector("[data-shortcut-save]") || form.querySelector("[type=submit]"));
      if (save) { event.preventDefault(); save.click(); }
      return;
    }
    if (event.key === "Escape") { if (typing(active)) active.blur(); if (dialog && dialog.open) dialog.close(); return; }
    if (typing(active) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "?" && dialog) { event.preventDefault(); dialog.open ? dialog.close() : dialog.showModal(); return; }
    var target = document.querySelector("[data-key='" + CSS.escape(event.key.toLowerCase()) + "']") ||
      document.querySelector("[data-key='" + CSS.escape(event.key) + "']");
    if (!target) return;
    event.preventDefault();
    if (target.dataset.keyAction === "focus") {
      var details = target.closest("details");
      if (details) details.open = true;
      target.focus();
      target.scrollIntoView({ block: "center" });
    } else {
      target.click();
    }
  });
})();
