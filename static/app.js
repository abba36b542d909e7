// kb: live search and compose. Plain JavaScript, no build step.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// ---- search page -------------------------------------------------------------

function initSearch() {
  const form = document.getElementById("search-form");
  if (!form) return;
  const input = document.getElementById("q");
  const category = document.getElementById("category");
  const list = document.getElementById("results");
  const empty = document.getElementById("no-results");
  const dym = document.getElementById("did-you-mean");
  const browse = document.getElementById("browse");
  const entryUrl = form.dataset.entry;
  const tagInput = form.querySelector('input[name="tag"]');
  let latest = 0;          // the newest request sent; older answers are dropped
  let selected = -1;

  function select(i) {
    const items = list.querySelectorAll("li a");
    if (!items.length) { selected = -1; return; }
    selected = Math.max(0, Math.min(i, items.length - 1));
    items.forEach((a, j) => a.classList.toggle("selected", j === selected));
    items[selected].scrollIntoView({block: "nearest"});
  }

  function render(data, q) {
    list.replaceChildren();
    const sid = data.search_id ? "&sid=" + data.search_id : "";
    for (const hit of data.results) {
      const li = document.createElement("li");
      li.className = "result";
      const a = document.createElement("a");
      a.href = entryUrl.replace("SLUG", encodeURIComponent(hit.slug)) + "?q=" + encodeURIComponent(q) + sid;
      const title = document.createElement("span");
      title.className = "title";
      title.textContent = hit.title;
      const snippet = document.createElement("span");
      snippet.className = "snippet";
      snippet.innerHTML = hit.snippet;  // server-escaped text with <mark> only
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = hit.category;
      if (hit.review_due_since) {
        const due = document.createElement("span");
        due.className = "warn";
        due.textContent = " · review overdue";
        meta.append(due);
      }
      a.append(title, snippet, meta);
      li.append(a);
      list.append(li);
    }
    empty.hidden = data.results.length > 0 || !q.trim();
    const propose = document.getElementById("propose-link");
    if (propose) {
      propose.href = propose.dataset.base + "?phrasing=" + encodeURIComponent(q.trim());
      document.getElementById("propose-q").textContent = q.trim();
    }
    if (data.did_you_mean) {
      dym.hidden = false;
      dym.replaceChildren("Showing results for ");
      const link = document.createElement("a");
      link.href = "?q=" + encodeURIComponent(data.did_you_mean);
      link.textContent = data.did_you_mean;
      dym.append(link);
    } else {
      dym.hidden = true;
    }
    if (browse) browse.hidden = Boolean(q.trim());
    selected = -1;
    if (data.results.length) select(0);
  }

  async function run() {
    const q = input.value;
    const id = ++latest;
    const params = new URLSearchParams({q: q, limit: "20", typing: "1"});
    if (category.value) params.set("category", category.value);
    if (tagInput) params.set("tag", tagInput.value);
    history.replaceState(null, "", "?" + new URLSearchParams(
      Object.fromEntries([...params].filter(([k]) => k !== "typing" && k !== "limit"))));
    if (!q.trim() && !category.value && !tagInput) {
      render({results: []}, "");
      return;
    }
    try {
      const response = await fetch(form.dataset.api + "?" + params, {headers: {Accept: "application/json"}});
      const data = await response.json();
      if (id !== latest) return;  // a newer keystroke already asked again
      render(data, q);
      document.body.dataset.searched = String(id);
    } catch (err) {
      if (id === latest) empty.hidden = false;
    }
  }

  const later = debounce(run, 30);  // short: stale answers are dropped anyway
  input.addEventListener("input", later);
  category.addEventListener("change", run);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { event.preventDefault(); select(selected + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); select(selected - 1); }
    else if (event.key === "Enter") {
      const items = list.querySelectorAll("li a");
      if (selected >= 0 && items[selected]) { event.preventDefault(); items[selected].click(); }
    }
  });
  if (input.value) {
    input.setSelectionRange(input.value.length, input.value.length);
    select(0);
  }
}

// ---- entry page: compose and copy ------------------------------------------------

function initCompose() {
  const article = document.getElementById("entry");
  if (!article) return;
  const form = document.getElementById("compose");
  const preview = document.getElementById("preview");
  const plain = document.getElementById("plain");
  const mailto = document.getElementById("mailto");
  const eml = document.getElementById("eml");
  const missingBox = document.getElementById("missing");
  const missingNames = document.getElementById("missing-names");
  const status = document.getElementById("copy-status");
  const copyButton = document.getElementById("copy");
  let state = {text: plain.value, html: preview.innerHTML, missing: missingNames.textContent ? missingNames.textContent.split(", ") : []};
  let latest = 0;

  function values() {
    const out = {};
    for (const input of form.querySelectorAll("input[name]")) {
      if (input.value.trim()) out[input.name] = input.value;
    }
    return out;
  }

  async function update() {
    const id = ++latest;
    const vals = values();
    const response = await fetch(article.dataset.compose, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify(vals),
    });
    if (!response.ok) return;
    const data = await response.json();
    if (id !== latest) return;
    state = {text: data.text, html: data.html, missing: data.missing};
    preview.innerHTML = data.html;  // sanitised on the server; values are escaped there
    plain.value = data.text;
    document.getElementById("opening").innerHTML = data.phone_opening_html;
    document.getElementById("points").innerHTML = data.phone_html;
    mailto.href = data.mailto;
    eml.href = article.dataset.eml + "?" + new URLSearchParams(vals);
    missingNames.textContent = data.missing.join(", ");
    missingBox.hidden = data.missing.length === 0;
    document.body.dataset.composed = String(id);
  }

  const later = debounce(update, 120);
  form.addEventListener("input", later);
  form.addEventListener("submit", (event) => { event.preventDefault(); update(); });

  async function copy() {
    await update();
    if (state.missing.length &&
        !window.confirm("These placeholders are still empty: " + state.missing.join(", ") + ".\nCopy anyway?")) {
      status.textContent = "Not copied: fill " + state.missing.join(", ") + " first.";
      return;
    }
    try {
      if (window.ClipboardItem && navigator.clipboard.write) {
        await navigator.clipboard.write([new ClipboardItem({
          "text/plain": new Blob([state.text], {type: "text/plain"}),
          "text/html": new Blob([state.html], {type: "text/html"}),
        })]);
      } else {
        await navigator.clipboard.writeText(state.text);
      }
      status.textContent = "Copied. Paste it into your reply.";
      fetch("/api/events", {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
        body: JSON.stringify({kind: "copy", slug: article.dataset.slug,
                              version: article.dataset.version, search_id: article.dataset.sid}),
      });
    } catch (err) {
      plain.classList.remove("visually-hidden");
      plain.select();
      status.textContent = "Your browser blocked copying: the text is selected, press Ctrl+C.";
    }
  }
  copyButton.addEventListener("click", copy);
  if (Object.keys(values()).length) update();

  const callToggle = document.getElementById("call-toggle");
  function setCallMode(on) {
    document.body.classList.toggle("call-mode", on);
    callToggle.setAttribute("aria-pressed", String(on));
    localStorage.setItem("kb.callMode", on ? "1" : "");
  }
  callToggle.addEventListener("click", () => setCallMode(!document.body.classList.contains("call-mode")));
  setCallMode(localStorage.getItem("kb.callMode") === "1");

  const star = document.getElementById("favourite");
  async function toggleFavourite() {
    const on = star.getAttribute("aria-pressed") !== "true";
    const response = await fetch(article.dataset.favouriteUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify({on: on}),
    });
    if (!response.ok) return;
    star.setAttribute("aria-pressed", String(on));
    star.textContent = on ? "★" : "☆";
    status.textContent = on ? "Added to your favourites." : "Removed from your favourites.";
  }
  star.addEventListener("click", toggleFavourite);

  // Single-key shortcuts work when the agent is not typing in a field.
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || overlayOpen()) return;
    const typing = isTyping(event.target);
    if (event.key === "Escape") {
      event.preventDefault();
      window.location.href = article.dataset.back;
      return;
    }
    if (typing) return;
    if (event.key === "c") { event.preventDefault(); copy(); }
    else if (event.key === "p") { event.preventDefault(); callToggle.click(); }
    else if (event.key === "f") { event.preventDefault(); toggleFavourite(); }
    else if (event.key === "Tab" && !event.shiftKey &&
             (document.activeElement === document.body || document.activeElement === null)) {
      const first = form.querySelector("input[name]");
      if (first) { event.preventDefault(); first.focus(); }
    }
  });
}

// ---- everywhere: "/" to search, "?" for the shortcut list ----------------------------

function isTyping(el) {
  return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
                el.isContentEditable);
}

function overlayOpen() {
  const box = document.getElementById("shortcuts");
  return box && !box.hidden;
}

function initShortcuts() {
  const box = document.getElementById("shortcuts");
  if (!box) return;
  let before = null;
  function show(on) {
    box.hidden = !on;
    if (on) { before = document.activeElement; document.getElementById("shortcuts-close").focus(); }
    else if (before && before.focus) before.focus();
  }
  document.getElementById("shortcuts-close").addEventListener("click", () => show(false));
  box.addEventListener("click", (event) => { if (event.target === box) show(false); });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (overlayOpen()) {
      if (event.key === "Escape" || event.key === "?") { event.preventDefault(); show(false); }
      return;
    }
    if (isTyping(event.target)) return;
    if (event.key === "?") { event.preventDefault(); show(true); }
    else if (event.key === "/") {
      const q = document.getElementById("q");
      event.preventDefault();
      if (q) { q.focus(); q.select(); }
      else if (document.body.dataset.searchUrl) {
        const back = document.getElementById("entry");
        window.location.href = back ? back.dataset.back : document.body.dataset.searchUrl;
      }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  initShortcuts(); initSearch(); initCompose();
  document.documentElement.dataset.ready = "1";  // the keys work from here on
});
