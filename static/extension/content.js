// kb in the reply box. In a text field of any page, `::` (after a space or at the start
// of a line) or the shortcut (Alt+K unless changed) opens a search panel at the cursor;
// the picked entry's blanks are asked in the panel and the finished email goes in at
// the cursor through the editor's own editing, so its undo takes it out again.
// Every request goes through the extension's service worker (worker.js).
(() => {
  if (window.__kbReplyBox) return;  // once per frame
  window.__kbReplyBox = true;

  const settings = {shortcut: "Alt+K", colons: true};
  const readSettings = (values) => {
    if (typeof values.shortcut === "string" && values.shortcut) settings.shortcut = values.shortcut;
    if (typeof values.colons === "boolean") settings.colons = values.colons;
  };
  chrome.storage.sync.get(["shortcut", "colons"]).then(readSettings).then(
    () => chrome.storage.managed.get(["shortcut", "colons"])).then(readSettings).catch(() => {});
  chrome.storage.onChanged.addListener((changes, area) => {
    if (area !== "sync") return;
    readSettings(Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, v.newValue])));
  });

  async function ask(message) {
    try {
      return await chrome.runtime.sendMessage(message);
    } catch (err) {  // the extension was reloaded or removed under this page
      return {error: "reload", message: "The kb extension was updated or restarted: reload this page to use it."};
    }
  }

  // ---- the field the agent writes in ---------------------------------------------

  function isTextField(el) {
    return el.tagName === "TEXTAREA" || el.tagName === "INPUT";
  }

  function fieldOf(node) {
    if (!node || node.nodeType !== 1 || node.closest("kb-reply-panel")) return null;
    if (node.tagName === "TEXTAREA" || (node.tagName === "INPUT" && /^(text|search)$/.test(node.type))) {
      return node.readOnly || node.disabled ? null : node;
    }
    if (!node.isContentEditable) return null;
    let root = node;  // the editor itself, not the paragraph the caret is in
    while (root.parentElement && root.parentElement.isContentEditable) root = root.parentElement;
    return root;
  }

  function fieldFromEvent(event) {
    const path = event.composedPath();
    if (path.some((n) => n.tagName === "KB-REPLY-PANEL")) return null;
    return fieldOf(path[0]);
  }

  // A chat box takes the entry's chat version when it has one: a one-line field, or a
  // box the site's rules call a chat box.
  function isChatBox(field, sites) {
    if (field.tagName === "INPUT" || field.getAttribute("aria-multiline") === "false") return true;
    return (sites || []).some((site) => {
      if (!site.chat_boxes || !siteMatches(site)) return false;
      try { return Boolean(field.closest(site.chat_boxes)); } catch (err) { return false; }
    });
  }

  function parseShortcut(text) {
    const parts = String(text).split("+").map((p) => p.trim()).filter(Boolean);
    const key = (parts.pop() || "").toUpperCase();
    const mods = new Set(parts.map((p) => p.toLowerCase()));
    const code = /^[A-Z]$/.test(key) ? "Key" + key : /^[0-9]$/.test(key) ? "Digit" + key : "";
    return {key, code, alt: mods.has("alt"), ctrl: mods.has("ctrl"), shift: mods.has("shift"),
            meta: mods.has("meta") || mods.has("cmd")};
  }

  function isShortcut(event) {
    const s = parseShortcut(settings.shortcut);
    if (!s.key || event.altKey !== s.alt || event.ctrlKey !== s.ctrl || event.shiftKey !== s.shift ||
        event.metaKey !== s.meta) return false;
    return s.code ? event.code === s.code : event.key.toUpperCase() === s.key;
  }

  // The text before the caret ends in "::" typed after a space or at a line's start.
  function colonsBeforeCaret(field) {
    let before;
    if (isTextField(field)) {
      if (field.selectionStart !== field.selectionEnd) return false;
      before = field.value.slice(0, field.selectionStart);
    } else {
      const sel = field.ownerDocument.getSelection();
      if (!sel.isCollapsed || !sel.anchorNode || sel.anchorNode.nodeType !== 3) return false;
      before = sel.anchorNode.data.slice(0, sel.anchorOffset);
    }
    return before.endsWith("::") && !/[\w:]$/.test(before.slice(0, -2));
  }

  function deleteColons(field) {
    if (isTextField(field)) {
      const end = field.selectionStart;
      field.setSelectionRange(end - 2, end);
    } else {
      const sel = field.ownerDocument.getSelection();
      sel.modify("extend", "backward", "character");
      sel.modify("extend", "backward", "character");
    }
    document.execCommand("delete");
  }

  function saveCaret(field) {
    if (isTextField(field)) return {start: field.selectionStart, end: field.selectionEnd};
    const sel = field.ownerDocument.getSelection();
    return sel.rangeCount && field.contains(sel.getRangeAt(0).startContainer)
      ? sel.getRangeAt(0).cloneRange() : null;
  }

  function restoreCaret(field, caret) {
    field.focus({preventScroll: true});
    if (!caret) return;
    if (isTextField(field)) {
      field.setSelectionRange(caret.start, caret.end);
    } else {
      const sel = field.ownerDocument.getSelection();
      sel.removeAllRanges();
      sel.addRange(caret);
    }
  }

  // Where the caret is on the screen. In a text area: a hidden copy of the field with its
  // text up to the caret, and a mark at its end.
  function caretBox(field, caret) {
    const box = field.getBoundingClientRect();
    if (!isTextField(field)) {
      const r = caret && (caret.getClientRects()[0] || caret.getBoundingClientRect());
      return r && (r.width || r.height) ? r : {left: box.left, top: box.top, bottom: box.top + 20};
    }
    const style = getComputedStyle(field);
    const mirror = document.createElement("div");
    for (const name of ["boxSizing", "width", "height", "borderTopWidth", "borderRightWidth",
      "borderBottomWidth", "borderLeftWidth", "paddingTop", "paddingRight", "paddingBottom",
      "paddingLeft", "fontStyle", "fontVariant", "fontWeight", "fontSize", "lineHeight",
      "fontFamily", "letterSpacing", "wordSpacing", "textIndent", "textTransform", "tabSize"]) {
      mirror.style[name] = style[name];
    }
    Object.assign(mirror.style, {position: "fixed", left: box.left + "px", top: box.top + "px",
      visibility: "hidden", overflow: "hidden", borderStyle: "solid",
      whiteSpace: field.tagName === "INPUT" ? "pre" : "pre-wrap", overflowWrap: "break-word"});
    mirror.textContent = field.value.slice(0, caret ? caret.end : field.value.length);
    const mark = document.createElement("span");
    mark.textContent = "\u200b";
    mirror.append(mark);
    document.documentElement.append(mirror);
    const r = mark.getBoundingClientRect();
    mirror.remove();
    const top = Math.min(Math.max(r.top - field.scrollTop, box.top), box.bottom - r.height);
    return {left: Math.min(r.left - field.scrollLeft, box.right), top, bottom: top + r.height};
  }

  // kb's HTML is sanitised on the server; here it is rebuilt from a short list of tags
  // and plain links all the same, since it goes into someone else's page.
  const TAGS = new Set(["P", "BR", "STRONG", "B", "EM", "I", "U", "UL", "OL", "LI", "A",
                        "BLOCKQUOTE", "CODE", "PRE", "H1", "H2", "H3", "H4", "HR"]);

  function cleanHtml(html) {
    const parsed = new DOMParser().parseFromString(html, "text/html");  // inert: nothing runs
    const out = document.createElement("div");
    (function copy(from, to) {
      for (const node of from.childNodes) {
        if (node.nodeType === 3) {
          // the line breaks of kb's HTML source are not text: an editor would keep them
          let text = node.data.replace(/\s+/g, " ");
          if (!node.previousSibling || node.previousSibling.nodeName === "BR") text = text.trimStart();
          if (!node.nextSibling || node.nextSibling.nodeName === "BR") text = text.trimEnd();
          const between = ["BODY", "UL", "OL", "BLOCKQUOTE"].includes(node.parentNode.nodeName);
          if (text.trim() || (text && !between)) to.append(text);
        } else if (node.nodeType === 1 && TAGS.has(node.tagName)) {
          const el = document.createElement(node.tagName);
          const href = node.tagName === "A" ? node.getAttribute("href") || "" : "";
          if (/^(https?:|mailto:)/i.test(href)) el.setAttribute("href", href);
          copy(node, el);
          to.append(el);
        } else if (node.nodeType === 1) {
          copy(node, to);
        }
      }
    })(parsed.body, out);
    return out.innerHTML;
  }

  // Through the editor's own editing, so it lands in its undo history.
  function insertInto(field, text, html) {
    if (html && !isTextField(field) && document.execCommand("insertHTML", false, html)) return;
    if (document.execCommand("insertText", false, text)) return;
    if (isTextField(field)) {  // an editor that refuses execCommand
      field.setRangeText(text, field.selectionStart, field.selectionEnd, "end");
      field.dispatchEvent(new InputEvent("input", {bubbles: true, inputType: "insertText", data: text}));
    }
  }

  // ---- the panel -----------------------------------------------------------------

  const STYLE = `
    :host { all: initial; position: fixed; z-index: 2147483647; }
    .kb { box-sizing: border-box; width: 23rem; max-width: calc(100vw - 16px);
      overflow: auto; font: 14px/1.4 system-ui, sans-serif; color: #1b1f24; background: #fff;
      border: 1px solid #b9c2cd; border-radius: 8px; box-shadow: 0 6px 24px rgba(0,0,0,.18); padding: 8px; }
    input { box-sizing: border-box; width: 100%; font: inherit; padding: 6px 8px; border: 1px solid #b9c2cd;
      border-radius: 6px; background: #fff; color: inherit; }
    input:focus { outline: 2px solid #0b5cad; outline-offset: 0; border-color: #0b5cad; }
    ul { list-style: none; margin: 6px 0 0; padding: 0; }
    li[role=option] { padding: 5px 8px; border-radius: 6px; cursor: pointer; }
    li[aria-selected=true] { background: #0b5cad; color: #fff; }
    li.weaker { color: #505a66; }
    li[aria-selected=true].weaker { color: #fff; }
    li.sep { font-size: 12px; color: #505a66; padding: 6px 8px 2px; }
    .t { font-weight: 600; display: block; }
    .s { display: block; font-size: 12px; opacity: .85; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .msg:empty { display: none; }
    .msg { margin: 6px 2px 0; font-size: 13px; }
    .msg.problem { color: #8a1f11; font-weight: 600; }
    .msg button { font: inherit; margin-left: 4px; }
    h2 { font-size: 14px; margin: 2px 2px 8px; }
    label { display: block; margin: 0 0 6px; font-size: 13px; }
    label > span { display: block; color: #505a66; }
    .from { color: #0b5cad; display: inline; }
    details { margin: 4px 0 6px; font-size: 13px; color: #505a66; }
    .preview { white-space: pre-wrap; font-size: 12px; max-height: 8rem; overflow: auto; border-top: 1px solid #d5dbe3;
      margin-top: 6px; padding-top: 6px; color: #303840; }
    .hint { font-size: 12px; color: #505a66; margin: 6px 2px 0; }
    kbd { font: 11px ui-monospace, monospace; border: 1px solid #b9c2cd; border-radius: 3px; padding: 0 3px; }
    @media (prefers-color-scheme: dark) {
      .kb, input { background: #1e2329; color: #e8ebef; border-color: #4a5561; }
      li[aria-selected=true] { background: #6cb2ff; color: #0b1420; }
      li.weaker, li.sep, label span, details, .hint { color: #a9b3bf; }
      .preview { color: #cfd6de; border-color: #37404a; }
      .msg.problem { color: #ff9c8a; }
      .from { color: #6cb2ff; }
    }`;

  let panel = null;

  function open(field, byColons) {
    const caret = saveCaret(field);
    const at = caretBox(field, caret);
    const host = document.createElement("kb-reply-panel");
    const root = host.attachShadow({mode: "open"});
    const style = document.createElement("style");
    style.textContent = STYLE;
    const box = document.createElement("div");
    box.className = "kb";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "kb: find an answer");
    const q = document.createElement("input");
    q.className = "q";
    q.type = "search";
    q.autocomplete = "off";
    q.spellcheck = false;
    q.placeholder = "Search kb: the customer's words";
    q.setAttribute("aria-label", "Search kb");
    q.setAttribute("role", "combobox");
    q.setAttribute("aria-autocomplete", "list");
    q.setAttribute("aria-controls", "kb-answers");
    const list = document.createElement("ul");
    list.id = "kb-answers";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Answers");
    const form = document.createElement("form");
    form.hidden = true;
    const msg = document.createElement("p");
    msg.className = "msg";
    msg.setAttribute("role", "status");
    box.append(q, list, form, msg);
    root.append(style, box);
    document.documentElement.append(host);

    panel = {field, caret, byColons, host, root, q, list, form, msg, results: [], selected: -1,
             latest: 0, typed: null, searchId: null, entry: null, busy: false,
             sites: ask({type: "rules"}).then((reply) => (reply && reply.sites) || [])};
    place(host, box, at);
    // keys typed in the panel are not the page's shortcuts
    for (const type of ["keydown", "keyup", "keypress", "input"]) {
      box.addEventListener(type, (event) => event.stopPropagation());
    }
    q.addEventListener("input", debounce(search, 30));
    q.addEventListener("keydown", onSearchKey);
    form.addEventListener("keydown", onFieldKey);
    form.addEventListener("input", debounce(preview, 150));
    form.addEventListener("submit", (event) => { event.preventDefault(); insert(); });
    document.addEventListener("mousedown", outside, true);
    q.focus();
  }

  // Below the caret, or above it when there is more room there; never off the screen.
  function place(host, box, at) {
    const width = Math.min(368, innerWidth - 16);
    const left = Math.max(8, Math.min(at.left, innerWidth - width - 8));
    const below = innerHeight - at.bottom - 12;
    const above = at.top - 12;
    host.style.left = left + "px";
    if (below >= 240 || below >= above) {
      host.style.top = Math.max(8, at.bottom + 4) + "px";
      box.style.maxHeight = Math.max(120, Math.min(448, below)) + "px";
    } else {
      host.style.bottom = Math.max(8, innerHeight - at.top + 4) + "px";
      box.style.maxHeight = Math.max(120, Math.min(448, above)) + "px";
    }
  }

  function outside(event) {
    if (panel && !event.composedPath().includes(panel.host)) close(false);
  }

  // Esc: the field as it was, "::" put back when they opened the panel.
  function close(restore) {
    if (!panel) return;
    const {field, caret, host, byColons} = panel;
    panel = null;
    document.removeEventListener("mousedown", outside, true);
    host.remove();
    if (restore) {
      restoreCaret(field, caret);
      if (byColons) document.execCommand("insertText", false, "::");
    }
  }

  function debounce(fn, ms) {
    let timer;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function say(text, problem, action) {
    if (!panel) return;
    panel.msg.textContent = text;
    panel.msg.classList.toggle("problem", Boolean(problem));
    panel.msg.setAttribute("role", problem ? "alert" : "status");
    if (action) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = action;
      button.addEventListener("click", () => { ask({type: "open-connect"}); close(false); });
      panel.msg.append(" ", button);
    }
  }

  function problem(reply, what) {
    const connect = reply.error === "connect" || reply.error === "setup";
    say((what ? what + " " : "") + reply.message, true, connect ? "Connect" : "");
  }

  // ---- search: kb's own ranking, sure matches first --------------------------------

  async function search() {
    const p = panel;
    if (!p || p.form.hidden === false) return;
    const q = p.q.value;
    const id = ++p.latest;
    if (!q.trim()) { show(p, [], q); say(""); return; }
    // the same query still being typed: one search in kb's log, as on the site
    const words = q.trim().toLowerCase();
    const t = p.typed;
    const after = t && Date.now() - t.at < 20000 && (words.startsWith(t.q) || t.q.startsWith(words)) ? t.id : null;
    const reply = await ask({type: "search", q, after});
    if (reply.data && reply.data.search_id) p.typed = {id: reply.data.search_id, q: words, at: Date.now()};
    if (panel !== p || id !== p.latest) return;  // a newer keystroke asked again
    if (reply.status === 429) return;  // an earlier keystroke's search still running
    if (reply.error) { show(p, [], q); problem(reply); return; }
    p.searchId = reply.data.search_id || null;
    show(p, reply.data.results || [], q);
    const sure = p.results.filter((r) => r.confident !== false).length;
    say(!p.results.length ? `Nothing in kb for “${q.trim()}”.`
        : !sure ? "No sure match: read it before you use it." : "");
  }

  function plain(html) {
    return new DOMParser().parseFromString(html || "", "text/html").body.textContent;
  }

  function show(p, results, q) {
    const sure = results.filter((r) => r.confident !== false);
    const weaker = results.filter((r) => r.confident === false);
    p.results = [...sure, ...weaker];
    p.list.replaceChildren();
    p.results.forEach((hit, i) => {
      if (i === sure.length && i > 0) {
        const sep = document.createElement("li");
        sep.className = "sep";
        sep.setAttribute("role", "presentation");
        sep.textContent = "Less sure";
        p.list.append(sep);
      }
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.id = "kb-result-" + i;
      if (hit.confident === false) li.className = "weaker";
      const title = document.createElement("span");
      title.className = "t";
      title.textContent = hit.title;
      const snippet = document.createElement("span");
      snippet.className = "s";
      snippet.textContent = plain(hit.snippet) || hit.category || "";
      li.append(title, snippet);
      li.addEventListener("mousedown", (event) => { event.preventDefault(); pick(i); });
      p.list.append(li);
    });
    select(p, p.results.length ? 0 : -1);
    // for whoever measures: which query's results are on screen
    p.host.dataset.shown = q;
  }

  function select(p, i) {
    const items = [...p.list.querySelectorAll("li[role=option]")];
    p.selected = items.length ? Math.max(0, Math.min(i, items.length - 1)) : -1;
    items.forEach((li, j) => li.setAttribute("aria-selected", String(j === p.selected)));
    if (p.selected >= 0) {
      items[p.selected].scrollIntoView({block: "nearest"});
      p.q.setAttribute("aria-activedescendant", items[p.selected].id);
    }
  }

  function onSearchKey(event) {
    const p = panel;
    if (event.key === "ArrowDown") { event.preventDefault(); select(p, p.selected + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); select(p, p.selected - 1); }
    else if (event.key === "Enter") { event.preventDefault(); if (p.selected >= 0) pick(p.selected); }
    else if (event.key === "Escape") { event.preventDefault(); close(true); }
  }

  // ---- the entry's blanks ----------------------------------------------------------

  async function pick(i) {
    const p = panel;
    const hit = p && p.results[i];
    if (!hit || p.busy) return;
    p.busy = true;
    say("Opening " + hit.title + "…");
    const chat = isChatBox(p.field, await p.sites);
    const reply = await ask({type: "fields", slug: hit.slug, chat});
    p.busy = false;
    if (panel !== p) return;
    if (reply.error) { problem(reply); return; }
    const entry = reply.data;
    p.entry = entry;
    ask({type: "event", kind: "view", slug: entry.slug, version: entry.version, search_id: p.searchId});
    const offered = reply.offered || {};
    // nothing to ask (the agent's name, the company and the sheet's facts are known)
    if (entry.fields.every((f) => f.value)) { insert(); return; }
    showFields(p, entry, offered);
  }

  function showFields(p, entry, offered) {
    const form = p.form;
    form.replaceChildren();
    const title = document.createElement("h2");
    title.textContent = entry.channel === "chat" ? entry.title + " · chat message" : entry.title;
    form.append(title);
    const known = document.createElement("details");
    const summary = document.createElement("summary");
    known.append(summary);
    const filled = [];
    for (const f of entry.fields) {
      const label = document.createElement("label");
      const name = document.createElement("span");
      name.textContent = f.label;
      const input = document.createElement("input");
      input.name = f.name;
      input.autocomplete = "off";
      input.spellcheck = false;
      if (f.value) {
        input.value = f.value;
        filled.push(f.label);
        label.append(name, input);
        known.append(label);
        continue;
      }
      input.value = offered[f.name] || "";
      if (offered[f.name]) {
        const from = document.createElement("span");
        from.className = "from";
        from.textContent = " · from the page";
        name.append(from);
      }
      if (f.fallback) input.dataset.optional = "1";
      input.placeholder = f.fallback ? "if empty: " + f.fallback : f.example ? "e.g. " + f.example : "";
      label.append(name, input);
      form.append(label);
    }
    if (filled.length) {
      summary.textContent = "Filled in for you: " + filled.join(", ");
      form.append(known);
    }
    const text = document.createElement("div");
    text.className = "preview";
    text.setAttribute("aria-label", "The email");
    const hint = document.createElement("p");
    hint.className = "hint";
    hint.innerHTML = "<kbd>Enter</kbd> next blank, then insert · <kbd>Esc</kbd> back to the answers";
    form.append(text, hint);
    p.list.hidden = true;
    p.q.hidden = true;
    form.hidden = false;
    say("");
    const first = blanks(p)[0] || form.querySelector("label > input");
    first.focus();
    if (first.value) first.select();
    preview();
  }

  function inputs(p) {
    return [...p.form.querySelectorAll("input")];
  }

  function blanks(p) {
    return inputs(p).filter((el) => !el.value.trim() && !el.dataset.optional && !el.closest("details"));
  }

  function values(p) {
    const out = {};
    for (const el of inputs(p)) if (el.value.trim()) out[el.name] = el.value;
    return out;
  }

  async function preview() {
    const p = panel;
    if (!p || !p.entry) return;
    const reply = await ask({type: "compose", slug: p.entry.slug, values: values(p)});
    if (panel === p && reply.data) p.form.querySelector(".preview").textContent = message(p, reply.data).text;
  }

  // What goes in: the chat message in a chat box (when the entry has one), else the email.
  function message(p, data) {
    return p.entry.channel === "chat" && data.chat ? data.chat : data;
  }

  function onFieldKey(event) {
    const p = panel;
    if (event.key === "Escape") {
      event.preventDefault();
      p.form.hidden = true;
      p.list.hidden = false;
      p.q.hidden = false;
      p.entry = null;
      say("");
      p.q.focus();
    } else if (event.key === "Enter") {
      event.preventDefault();
      const empty = blanks(p);
      const all = inputs(p);
      const next = empty.find((el) => all.indexOf(el) > all.indexOf(event.target)) || empty[0];
      if (next && next !== event.target) next.focus();
      else insert();
    }
  }

  // The finished email at the cursor: never with a blank, never when kb did not answer.
  async function insert() {
    const p = panel;
    if (!p || p.busy) return;
    p.busy = true;
    const reply = await ask({type: "compose", slug: p.entry.slug, values: values(p)});
    p.busy = false;
    if (panel !== p) return;
    if (reply.error) { problem(reply, "Nothing was inserted."); return; }
    const out = message(p, reply.data);
    if (out.missing.length) {
      const labels = out.missing_labels || out.missing;
      if (p.form.hidden) showFields(p, p.entry, {});
      say("Not inserted yet: fill " + labels.join(", ") + ".", true);
      const field = p.form.querySelector(`input[name="${CSS.escape(out.missing[0])}"]`);
      if (field) field.focus();
      return;
    }
    const {field, caret, entry, searchId} = p;
    close(false);
    restoreCaret(field, caret);
    // the chat message is plain text; the email is formatted where the editor is rich
    let text = out.text.replace(/\s+$/, "");
    if (field.tagName === "INPUT") text = text.replace(/\s*\n\s*/g, " ");  // one line
    insertInto(field, text, out === reply.data ? cleanHtml(out.html) : "");
    // an insert is a copy: usage, gaps and the learning loop count it, linked to the search
    ask({type: "event", kind: "copy", slug: entry.slug, version: entry.version, search_id: searchId});
  }

  // ---- opening it ----------------------------------------------------------------

  window.addEventListener("keydown", (event) => {
    if (panel || !isShortcut(event)) return;
    const field = fieldFromEvent(event);
    if (!field) return;
    event.preventDefault();
    event.stopPropagation();
    open(field, false);
  }, true);

  window.addEventListener("input", (event) => {
    if (panel || !settings.colons || event.inputType !== "insertText" || event.data !== ":") return;
    const field = fieldFromEvent(event);
    if (!field || !colonsBeforeCaret(field)) return;
    deleteColons(field);
    open(field, true);
  }, true);

  // The page-value rules, read in this frame for the service worker.
  function glob(pattern) {
    return new RegExp("^" + pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(".*") + "$");
  }

  function firstGroup(pattern, text) {
    const m = new RegExp(pattern, "i").exec(text || "");
    return m ? (m[1] !== undefined ? m[1] : m[0]) : "";
  }

  function readSource(s) {
    try {
      if (s.selector) {
        const el = document.querySelector(s.selector);
        if (!el) return "";
        const text = s.attribute ? el.getAttribute(s.attribute) : el.innerText || el.textContent;
        return s.pattern ? firstGroup(s.pattern, text) : text;
      }
      if (s.url) return firstGroup(s.url, location.href);
      if (s.title) return firstGroup(s.title, document.title);
      if (s.text) return firstGroup(s.text, document.body ? document.body.innerText : "");
    } catch (err) { /* a selector or pattern this browser cannot read: no offer */ }
    return "";
  }

  // This page's address and, in a frame, the page around it (the helpdesk's ticket).
  function pageUrls() {
    const urls = [location.href];
    try {
      if (top !== window) urls.push(top.location.href);
    } catch (err) {  // a frame from another site: the ticket page's origin is all there is
      const origins = location.ancestorOrigins || [];
      if (origins.length) urls.push(origins[origins.length - 1] + "/");
    }
    return urls;
  }

  function siteMatches(site) {
    const urls = pageUrls();
    return (site.match || []).some((m) => urls.some((url) => glob(m).test(url)));
  }

  function pageValues(sites) {
    const out = {};
    for (const site of sites || []) {
      if (!(site.match || []).some((m) => glob(m).test(location.href))) continue;
      for (const [name, sources] of Object.entries(site.values || {})) {
        for (const source of out[name] ? [] : sources) {
          const value = String(readSource(source) || "").replace(/\s+/g, " ").trim().slice(0, 200);
          if (value) { out[name] = value; break; }
        }
      }
    }
    return out;
  }

  chrome.runtime.onMessage.addListener((message, sender, reply) => {
    if (sender.id === chrome.runtime.id && !sender.tab && message.type === "page-values") {
      reply(pageValues(message.sites));
    }
  });

  // kb's own extension page: the one-click connection hands its token over here.
  const handoff = document.querySelector("[data-kb-extension-token]");
  if (handoff) {
    ask({type: "connect", token: handoff.dataset.kbExtensionToken}).then((reply) => {
      handoff.textContent = reply.message;
      handoff.dataset.kbExtension = reply.ok ? "connected" : "refused";
    });
  }
  const state = document.querySelector("[data-kb-extension-status]");
  if (state) {
    ask({type: "kb-page"}).then((reply) => {
      if (reply && reply.message) state.textContent = "The extension is installed. " + reply.message;
    });
  }
})();
