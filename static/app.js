// kb: live search and compose. Plain JavaScript, no build step.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// A JSON write to kb's API: the CSRF token in a header (options such as redirect added).
function postJson(url, data, options = {}) {
  return fetch(url, {
    method: "POST", body: JSON.stringify(data), ...options,
    headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json"},
  });
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
  let typed = null;        // the last search logged: {id, q, at}; its next keystrokes continue it
  // the words the agent asked to search as typed (no spelling correction), or null
  let asTyped = new URLSearchParams(location.search).get("as_typed") === "1" ? typedWords(input.value) : null;

  const moreBox = document.getElementById("more-results");
  const moreList = document.getElementById("more");

  // the sure results, then the weaker ones: arrowing past the last sure one opens "More"
  function links() {
    return [...list.querySelectorAll("li a"), ...(moreBox.hidden ? [] : moreList.querySelectorAll("li a"))];
  }

  function select(i) {
    const items = links();
    if (!items.length) { selected = -1; return; }
    selected = Math.max(0, Math.min(i, items.length - 1));
    if (moreList.contains(items[selected])) moreBox.open = true;
    items.forEach((a, j) => a.classList.toggle("selected", j === selected));
    items[selected].scrollIntoView({block: "nearest"});
  }

  function render(data, q) {
    list.replaceChildren();
    moreList.replaceChildren();
    const sid = data.search_id ? "&sid=" + data.search_id : "";
    let weaker = 0;
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
      // confident matches first; weaker ones (a common word, a faint likeness) behind "more"
      if (hit.confident === false) { moreList.append(li); weaker += 1; } else list.append(li);
    }
    moreBox.hidden = weaker === 0;
    document.getElementById("more-count").textContent = String(weaker);
    // no result to rely on (only weaker ones behind "More results"): say so
    empty.hidden = data.results.length > weaker || !q.trim();
    const rebuilding = data.index === "rebuilding";
    const note = document.getElementById("index-rebuilding");
    if (note) note.hidden = !rebuilding || !q.trim();
    const propose = document.getElementById("propose-link");
    if (propose) {
      propose.href = propose.dataset.base + "?phrasing=" + encodeURIComponent(q.trim());
      document.getElementById("propose-q").textContent = q.trim();
      // offered whenever no result is a sure match, not only when there is none; not while
      // the index is rebuilt (the simpler search then misses what the sheet may hold)
      const sure = data.confident;
      document.getElementById("propose").hidden = sure || !q.trim() || rebuilding;
      document.getElementById("propose-why").textContent = data.results.length ? "No sure match." : "";
    }
    if (data.did_you_mean) {
      // the results are for other words than the customer's: say which, and offer the
      // words as typed (the link, or Alt+T)
      dym.hidden = false;
      const shown = document.createElement("strong");
      shown.textContent = data.did_you_mean;
      const back = document.createElement("a");
      back.id = "as-typed";
      back.href = "?" + new URLSearchParams({q: q, as_typed: "1"});
      back.textContent = "“" + q.trim() + "” as typed";
      back.addEventListener("click", (event) => { event.preventDefault(); searchAsTyped(); });
      const key = document.createElement("kbd");
      key.textContent = "Alt+T";
      dym.replaceChildren("Showing results for ", shown, ". Search for ", back, " ", key);
    } else if (asTyped !== null && typedWords(q).startsWith(asTyped)) {
      dym.hidden = false;
      dym.replaceChildren("Searched as typed, no spelling correction.");
    } else {
      dym.hidden = true;
    }
    if (browse) browse.hidden = Boolean(q.trim());
    selected = -1;
    if (data.results.length) select(0);
  }

  function typedWords(q) { return q.trim().toLowerCase(); }

  // Back to the customer's words as typed, for as long as the box keeps them.
  function searchAsTyped() {
    asTyped = typedWords(input.value);
    run();
    input.focus();
  }

  async function run() {
    const q = input.value;
    const id = ++latest;
    const params = new URLSearchParams({q: q, limit: "20", typing: "1"});
    if (asTyped !== null && typedWords(q).startsWith(asTyped) && asTyped) params.set("as_typed", "1");
    else asTyped = null;
    if (category.value) params.set("category", category.value);
    if (tagInput) params.set("tag", tagInput.value);
    // the same query still being typed or trimmed: one search in the log, whichever
    // server process answers this keystroke
    const words = q.trim().toLowerCase();
    if (typed && Date.now() - typed.at < 20000 && (words.startsWith(typed.q) || typed.q.startsWith(words))) {
      params.set("after", typed.id);
    }
    history.replaceState(null, "", "?" + new URLSearchParams(
      Object.fromEntries([...params].filter(([k]) => k !== "typing" && k !== "limit"))));
    if (!q.trim() && !category.value && !tagInput) {
      render({results: []}, "");
      return;
    }
    try {
      const response = await fetch(form.dataset.api + "?" + params, {headers: {Accept: "application/json"}});
      const data = await response.json();
      if (data.search_id) typed = {id: data.search_id, q: words, at: Date.now()};
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
  document.addEventListener("keydown", (event) => {
    if (event.altKey && !event.ctrlKey && !event.metaKey && event.code === "KeyT" && !dym.hidden) {
      event.preventDefault();
      searchAsTyped();
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { event.preventDefault(); select(selected + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); select(selected - 1); }
    else if (event.key === "Enter") {
      const items = links();
      if (selected >= 0 && items[selected]) { event.preventDefault(); items[selected].click(); }
    }
  });
  if (input.value) {
    // "/" from another page: the old words selected, so the next query replaces them
    if (sessionStorage.getItem("kb.slash")) input.select();
    else input.setSelectionRange(input.value.length, input.value.length);
    select(0);
  }
  sessionStorage.removeItem("kb.slash");
}

// ---- entry page: compose and copy ------------------------------------------------

// What the agent typed is kept per entry in this tab until the email is copied, so a
// reload, a detour or a sign-in after the session ended loses nothing.
const DRAFT_MINUTES = 60;

function escapeHtml(text) {
  const div = document.createElement("div");
  div.textContent = text;
  return div.innerHTML;
}

function draftKey(slug) { return "kb.draft." + slug; }

function loadDraft(slug) {
  try {
    const draft = JSON.parse(sessionStorage.getItem(draftKey(slug)) || "null");
    if (draft && Date.now() - draft.at < DRAFT_MINUTES * 60000) return draft.values;
  } catch (err) { /* a damaged draft is no draft */ }
  return null;
}

function initCompose() {
  const article = document.getElementById("entry");
  if (!article) return;
  const slug = article.dataset.slug;
  const form = document.getElementById("compose");
  const preview = document.getElementById("preview");
  const plain = document.getElementById("plain");
  const mailto = document.getElementById("mailto");
  const missingBox = document.getElementById("missing");
  const missingNames = document.getElementById("missing-names");
  const status = document.getElementById("copy-status");
  const copyButton = document.getElementById("copy");
  const anywayButton = document.getElementById("copy-anyway");
  const inputs = [...form.querySelectorAll("input[name]:not([type=hidden])")];
  let latest = 0;
  let lastData = null;  // the last email composed, to show again in the other channel

  function values() {
    const out = {};
    for (const input of inputs) {
      if (input.value.trim()) out[input.name] = input.value;
    }
    return out;
  }

  function saveDraft() {
    const typed = {};
    for (const input of inputs) if (input.value !== input.defaultValue) typed[input.name] = input.value;
    if (Object.keys(typed).length) {
      sessionStorage.setItem(draftKey(slug), JSON.stringify({at: Date.now(), values: typed}));
    } else {
      sessionStorage.removeItem(draftKey(slug));
    }
  }

  // The email for the values in the form now, from the server. Throws SessionEnded
  // when the sign-in has lapsed, so nothing stale is ever copied.
  async function composeNow() {
    const vals = values();
    let response;
    try {
      response = await postJson(article.dataset.compose, vals, {redirect: "manual"});
    } catch (err) {
      throw new Error("offline");
    }
    if (response.status === 401 || response.status === 403 || response.status === 400 ||
        response.type === "opaqueredirect") {
      throw new SessionEnded();
    }
    if (!response.ok) throw new Error("server " + response.status);
    return {vals, data: await response.json()};
  }

  function show(vals, data) {
    preview.innerHTML = data.html;  // sanitised on the server; values are escaped there
    plain.value = data.text;
    document.getElementById("opening").innerHTML = data.phone_opening_html;
    document.getElementById("points").innerHTML = data.phone_html;
    mailto.href = data.mailto;
    showChat(data.chat);
    lastData = data;
    // what is still to fill in the channel Copy gives
    const shown = channel() === "chat" && data.chat ? data.chat : data;
    missingNames.textContent = labels(shown).join(", ");
    missingBox.hidden = shown.missing.length === 0;
    if (!data.missing.length) anywayButton.hidden = true;
  }

  // The channel: the email, or the entry's short chat and SMS message (m switches,
  // remembered in this browser). Copy gives the chosen channel's text.
  const chatPane = document.getElementById("chat-pane");
  const copyWhat = document.getElementById("copy-what");
  const channelInputs = [...document.querySelectorAll("input[name=channel-choice]")];
  function channel() { return document.body.classList.contains("chat-channel") ? "chat" : "email"; }
  function setChannel(which) {
    const chat = which === "chat";
    document.body.classList.toggle("chat-channel", chat);
    chatPane.hidden = !chat;
    copyWhat.textContent = chat ? "Copy chat message" : "Copy email";
    for (const input of channelInputs) input.checked = input.value === which;
    localStorage.setItem("kb.channel", which);
    if (lastData) show(null, lastData);
  }
  for (const input of channelInputs) input.addEventListener("change", () => setChannel(input.value));
  setChannel(localStorage.getItem("kb.channel") === "chat" ? "chat" : "email");

  function showChat(chat) {
    const bubble = document.getElementById("chat-preview");
    if (!chat || !bubble) return;
    bubble.textContent = chat.text;
    const length = document.getElementById("chat-length");
    length.textContent = chat.length + " of " + chat.limit + " characters" +
      (chat.over ? ": too long for one message" : "");
  }

  // The sheet's labels for the values still to fill ("Order number"), never the
  // placeholder's machine name.
  function labels(data) {
    return data.missing_labels || data.missing.map(label);
  }

  async function update() {
    const id = ++latest;
    try {
      const {vals, data} = await composeNow();
      if (id !== latest) return;
      show(vals, data);
      document.body.dataset.composed = String(id);
    } catch (err) {
      // no dialog while the agent types: the copy asks for the sign-in
      if (err instanceof SessionEnded) status.textContent = "Your sign-in has ended. What you type is kept; Copy asks you to sign in again.";
    }
  }

  function label(name) {
    const input = form.querySelector(`input[name="${name}"]`);
    const span = input && input.closest("label").querySelector("span");
    return span ? span.firstChild.textContent.trim() : name;
  }

  function firstEmpty(after) {
    const required = inputs.filter((el) => !el.value.trim() && !el.dataset.optional);
    if (!after) return required[0] || null;
    const i = inputs.indexOf(after);
    return required.find((el) => inputs.indexOf(el) > i) || required[0] || null;
  }

  const later = debounce(update, 120);
  form.addEventListener("input", () => { saveDraft(); later(); });
  form.addEventListener("submit", (event) => {
    // "Download .eml" posts the form to the server, which sends the file back, once
    // every value is there (or the agent chose to download with blanks)
    if (event.submitter && event.submitter.id === "eml") {
      if (emlGo) { emlGo = false; return; }
      event.preventDefault();
      finish("eml", false);
      return;
    }
    event.preventDefault();
    update();
  });

  // One rule for Copy, "Open in mail app" and "Download .eml": with a value still to
  // fill, each goes to that field and names what is missing; doing it with blanks
  // (marked [Like this]) is a second, deliberate step.
  const WITH_BLANKS = {copy: "Copy with blanks", mailto: "Open with blanks", eml: "Download with blanks"};
  const NOT_YET = {copy: "Not copied yet", mailto: "Not opened yet", eml: "Not downloaded yet"};
  let blanksFor = "copy";  // what the "… with blanks" button does
  let emlGo = false;  // the next .eml submit goes to the server

  function refuseWithBlanks(action, data) {
    status.textContent = NOT_YET[action] + ": fill " + labels(data).join(", ") + ".";
    blanksFor = action;
    anywayButton.firstChild.textContent = WITH_BLANKS[action] + " ";
    anywayButton.hidden = false;
    const field = form.querySelector(`input[name="${data.missing[0]}"]`) || firstEmpty();
    if (field) field.focus();
  }

  // "Open in mail app" and "Download .eml" with the values in the form now.
  async function finish(action, anyway) {
    ++latest;
    let data;
    try {
      data = (await composeNow()).data;
    } catch (err) {
      status.textContent = err instanceof SessionEnded
        ? "Your sign-in has ended: sign in again, what you typed is kept."
        : "The server did not answer. Try again in a moment.";
      return;
    }
    show(null, data);
    if (data.missing.length && !anyway) { refuseWithBlanks(action, data); return; }
    anywayButton.hidden = true;
    const marked = data.missing.length ? " with blanks: replace the [marked] parts before sending." : ".";
    if (action === "mailto") {
      status.textContent = "Opened in your mail app" + marked;
      window.location.href = data.mailto;
    } else {
      form.querySelector("input[name=blanks]").value = anyway ? "1" : "";
      emlGo = true;
      form.requestSubmit(document.getElementById("eml"));
      status.textContent = "Downloaded" + marked;
    }
  }

  mailto.addEventListener("click", (event) => {
    event.preventDefault();
    finish("mailto", false);
  });

  function withBlanks() {
    if (blanksFor === "copy") copy(true);
    else finish(blanksFor, true);
  }

  async function writeClipboard(text, htmlText) {
    if (window.ClipboardItem && navigator.clipboard.write) {
      await navigator.clipboard.write([new ClipboardItem({
        "text/plain": new Blob([text], {type: "text/plain"}),
        "text/html": new Blob([htmlText], {type: "text/html"}),
      })]);
    } else {
      await navigator.clipboard.writeText(text);
    }
  }

  // Copy the email. With a placeholder still empty the default is to go to that field;
  // copying with blanks is a second, deliberate step (anyway = true).
  async function copy(anyway) {
    ++latest;  // an older preview update must not overwrite what is copied
    let result;
    try {
      result = await composeNow();
    } catch (err) {
      if (err instanceof SessionEnded) {
        signInAgain("Not copied: your sign-in has ended. Sign in again and the email is copied with what you typed.",
                    () => copy(anyway));
      } else {
        status.textContent = "Not copied: the server did not answer. Try again in a moment.";
      }
      return;
    }
    const {vals, data} = result;
    show(vals, data);
    const chat = channel() === "chat";
    if (chat && !data.chat) {
      status.textContent = "Not copied: this entry has no chat version yet. Press m to copy the email instead.";
      return;
    }
    const what = chat ? {...data.chat, missing_labels: data.chat.missing_labels} : data;
    if (what.missing.length && !anyway) {
      refuseWithBlanks("copy", what);
      return;
    }
    try {
      if (chat) await writeClipboard(what.text, escapeHtml(what.text));
      else await writeClipboard(data.text, data.html);
      status.textContent = what.missing.length
        ? "Copied with blanks: replace " + labels(what).map((n) => "[" + n + "]").join(", ") +
          " before sending."
        : chat ? "Copied the chat message. Paste it into the chat." : "Copied. Paste it into your reply.";
      anywayButton.hidden = true;
      sessionStorage.removeItem(draftKey(slug));
      // a copy of each entry in the reply; "did not help" is said of the first
      const keys = [];
      for (const part of JSON.parse(article.dataset.together || "[]")) {
        const logged = await postJson("/api/events", {kind: "copy", slug: part.slug, version: part.version,
                                                      search_id: article.dataset.sid}).catch(() => null);
        if (logged && logged.ok) keys.push((await logged.json()).copy);
      }
      offerOutcome(keys[0] || null);
    } catch (err) {
      plain.classList.remove("visually-hidden");
      plain.select();
      status.textContent = "Your browser blocked copying: the text is selected, press Ctrl+C.";
    }
  }
  // After a copy: "did not help" in one key (w, u, o), sent with the copy's key, so the
  // trainers see per entry and version how often an answer failed.
  const outcomeBox = document.getElementById("outcome");
  let copyKey = null;
  function offerOutcome(key) {
    copyKey = key;
    outcomeBox.hidden = !key;
  }
  async function sendOutcome(signal) {
    if (!copyKey) return;
    const button = outcomeBox.querySelector(`[data-signal="${signal}"]`);
    const response = await postJson("/api/outcomes", {copy: copyKey, signal}).catch(() => null);
    if (response && response.ok) {
      outcomeBox.hidden = true;
      status.textContent = "Noted: " + button.textContent.replace(/^\s*\w\s*/, "").trim() +
        ". The trainers see it beside this entry.";
    } else {
      status.textContent = "Not noted: the server did not answer. Try again in a moment.";
    }
  }
  for (const button of outcomeBox.querySelectorAll("[data-signal]")) {
    button.addEventListener("click", () => sendOutcome(button.dataset.signal));
  }
  // "And also…": another entry for the same reply (a customer with two problems). The
  // page becomes /e/<this>?and=<others>, one email with one greeting and one closing;
  // what was typed comes along (the draft is this entry's).
  const andBox = document.getElementById("and-box");
  const andQ = document.getElementById("and-q");
  const andResults = document.getElementById("and-results");
  const inReply = JSON.parse(article.dataset.together || "[]").map((p) => p.slug);
  let andPicked = 0;
  function openAnd() {
    andBox.hidden = false;
    andQ.focus();
  }
  function addToReply(other) {
    saveDraft();
    const rest = [...inReply.slice(1), other].filter((s, i, all) => s !== slug && all.indexOf(s) === i);
    const params = new URLSearchParams(location.search);
    params.set("and", rest.join(","));
    window.location.href = article.dataset.entryUrl + "?" + params.toString();
  }
  const andLinks = () => [...andResults.querySelectorAll("a")];
  function andSelect(i) {
    const links = andLinks();
    andPicked = Math.max(0, Math.min(i, links.length - 1));
    links.forEach((a, k) => a.classList.toggle("selected", k === andPicked));
  }
  const andSearch = debounce(async () => {
    const q = andQ.value.trim();
    if (!q) { andResults.replaceChildren(); return; }
    const url = article.dataset.searchApi + "?" + new URLSearchParams({q, limit: "6", typing: "1"});
    const response = await fetch(url, {headers: {Accept: "application/json"}}).catch(() => null);
    if (!response || !response.ok || andQ.value.trim() !== q) return;
    const data = await response.json();
    andResults.replaceChildren(...data.results.filter((r) => !inReply.includes(r.slug)).map((r) => {
      const li = document.createElement("li");
      li.className = "result";
      const a = document.createElement("a");
      a.href = "#";
      a.textContent = r.title;
      a.addEventListener("click", (event) => { event.preventDefault(); addToReply(r.slug); });
      li.append(a);
      return li;
    }));
    andSelect(0);
  }, 60);
  andQ.addEventListener("input", andSearch);
  andQ.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { event.preventDefault(); andSelect(andPicked + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); andSelect(andPicked - 1); }
    else if (event.key === "Enter") {
      event.preventDefault();
      const link = andLinks()[andPicked];
      if (link) link.click();
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      andBox.hidden = true;
      document.getElementById("and-also").focus();
    }
  });
  document.getElementById("and-also").addEventListener("click", openAnd);
  copyButton.addEventListener("click", () => copy(false));
  anywayButton.addEventListener("click", withBlanks);

  const draft = loadDraft(slug);
  if (draft) {
    for (const input of inputs) {
      if (input.name in draft && !new URLSearchParams(location.search).has(input.name)) input.value = draft[input.name];
    }
  }
  if (draft || Object.keys(values()).length) update();

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
    const response = await postJson(article.dataset.favouriteUrl, {on: on});
    if (!response.ok) return;
    star.setAttribute("aria-pressed", String(on));
    star.textContent = on ? "★" : "☆";
    status.textContent = on ? "Added to your favourites." : "Removed from your favourites.";
  }
  star.addEventListener("click", toggleFavourite);
  const about = document.getElementById("about");

  // Letters work when the agent is not typing; from a field the same keys work with Alt
  // (Ctrl+Enter copies too). Esc first leaves the field, a second Esc goes back to search.
  document.addEventListener("keydown", (event) => {
    if (overlayOpen() || signInOpen()) return;
    const typing = isTyping(event.target);
    const inForm = typing && form.contains(event.target);
    if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
      event.preventDefault(); copy(false); return;
    }
    if (event.altKey && !event.ctrlKey && !event.metaKey) {
      const code = event.code;
      if (code === "KeyC") { event.preventDefault(); copy(event.shiftKey); }
      else if (code === "KeyP") { event.preventDefault(); callToggle.click(); }
      else if (code === "KeyM") { event.preventDefault(); setChannel(channel() === "chat" ? "email" : "chat"); }
      else if (code === "KeyF") { event.preventDefault(); toggleFavourite(); }
      return;
    }
    if (event.ctrlKey || event.metaKey) return;
    if (event.key === "Escape") {
      event.preventDefault();
      if (typing) { event.target.blur(); status.textContent = "Esc again: back to search (what you typed is kept)."; return; }
      saveDraft();
      window.location.href = article.dataset.back;
      return;
    }
    if (inForm && event.key === "Tab" && !event.shiftKey) {
      // Tab walks the fields still empty, as Enter does, past the ones already filled
      // (company, the agent's own name); Shift+Tab walks back through every field
      const i = inputs.indexOf(event.target);
      const next = inputs.find((el, k) => k > i && !el.value.trim());
      event.preventDefault();
      (next || copyButton).focus();
      return;
    }
    if (inForm && event.key === "Enter" && !event.shiftKey) {
      // Enter walks the empty fields, and copies once none is left
      event.preventDefault();
      const next = firstEmpty(event.target);
      if (next && next !== event.target) next.focus();
      else copy(false);
      return;
    }
    if (typing) return;
    if (event.key === "c") { event.preventDefault(); copy(false); }
    else if (event.key === "p") { event.preventDefault(); callToggle.click(); }
    else if (event.key === "m") { event.preventDefault(); setChannel(channel() === "chat" ? "email" : "chat"); }
    else if (event.key === "a") { event.preventDefault(); openAnd(); }
    else if (!outcomeBox.hidden && ["w", "u", "o"].includes(event.key)) {
      event.preventDefault();
      sendOutcome({w: "wrong", u: "unhappy", o: "outdated"}[event.key]);
    }
    else if (event.key === "f") { event.preventDefault(); toggleFavourite(); }
    else if (event.key === "i" && about) { event.preventDefault(); about.open = !about.open; }
    else if (event.key === "Tab" && !event.shiftKey &&
             (document.activeElement === document.body || document.activeElement === null)) {
      const first = firstEmpty() || inputs[0];
      if (first) { event.preventDefault(); first.focus(); }
    }
  });
}

// ---- signing in again in place, when the session ended --------------------------------

class SessionEnded extends Error {}

function signInOpen() {
  const box = document.getElementById("signin");
  return box && !box.hidden;
}

// Shows the sign-in box over the page; on success takes the fresh CSRF token and runs
// `then` (which finishes what the agent was doing with what they typed).
function signInAgain(message, then) {
  const box = document.getElementById("signin");
  if (!box) { window.alert(message); return; }
  const form = box.querySelector("form");
  const error = box.querySelector(".error");
  box.querySelector(".why").textContent = message;
  error.textContent = "";
  box.hidden = false;
  const user = form.querySelector("input[name=username]");
  (user.value ? form.querySelector("input[name=password]") : user).focus();
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      const page = await fetch(form.action, {headers: {Accept: "text/html"}});
      const token = (await page.text()).match(/name="csrf_token" value="([^"]+)"/);
      const body = new URLSearchParams(new FormData(form));
      if (token) body.set("csrf_token", token[1]);
      const response = await fetch(form.action, {method: "POST", body: body, redirect: "follow"});
      const html = await response.text();
      const fresh = html.match(/name="csrf-token" content="([^"]+)"/);
      if (!response.ok || response.url.includes("/login")) {
        error.textContent = "That did not work: check the name and password.";
        return;
      }
      if (fresh) document.querySelector('meta[name="csrf-token"]').content = fresh[1];
      for (const field of document.querySelectorAll('input[name="csrf_token"]')) {
        if (fresh) field.value = fresh[1];
      }
      form.querySelector("input[name=password]").value = "";
      box.hidden = true;
      if (then) then();
    } catch (err) {
      error.textContent = "The server did not answer. Try again in a moment.";
    }
  };
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
      if (event.key === "Escape" || event.key === "?") {
        // this key closes the list and does nothing else (not also "back to search")
        event.preventDefault();
        event.stopImmediatePropagation();
        show(false);
      }
      return;
    }
    const q = document.getElementById("q");
    // "/" always means the search box, empty or with its words selected (also from the box)
    if (event.key === "/" && q && event.target === q) { event.preventDefault(); q.select(); return; }
    if (isTyping(event.target)) return;
    if (event.key === "?") { event.preventDefault(); show(true); }
    else if (event.key === "/") {
      event.preventDefault();
      if (q) { q.focus(); q.select(); }
      else if (document.body.dataset.searchUrl) {
        const back = document.getElementById("entry");
        sessionStorage.setItem("kb.slash", "1");
        window.location.href = back ? back.dataset.back : document.body.dataset.searchUrl;
      }
    }
  });
}

// ---- entry forms: tags as chips, a live preview and the answer checks ----------------------
//
// The tags stay one plain field (comma separated) that the form sends; the chips only show
// it. Without this script the field is typed as text and the checks show after sending.

function initTagChips(source) {
  const label = source.closest("label");
  const box = document.createElement("div");
  box.className = "chips";
  const typing = document.createElement("input");
  typing.id = "tags-typing";
  typing.autocomplete = "off";
  if (source.getAttribute("list")) typing.setAttribute("list", source.getAttribute("list"));
  if (label) label.htmlFor = typing.id;
  const tags = () => source.value.split(/[,;]/).map((t) => t.trim().toLowerCase()).filter(Boolean);
  const changed = () => source.form.dispatchEvent(new Event("input", {bubbles: true}));
  const set = (list) => { source.value = [...new Set(list)].join(", "); render(); changed(); };
  function render() {
    for (const chip of box.querySelectorAll(".chip")) chip.remove();
    for (const tag of tags()) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = tag;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "×";
      remove.setAttribute("aria-label", "Remove tag " + tag);
      remove.addEventListener("click", () => { set(tags().filter((t) => t !== tag)); typing.focus(); });
      chip.append(remove);
      box.insertBefore(chip, typing);
    }
  }
  // what is typed becomes chips at a comma, Enter, leaving the box, or sending the form
  const commit = () => {
    const typed = typing.value.split(/[,;]/).map((t) => t.trim().toLowerCase()).filter(Boolean);
    typing.value = "";
    if (typed.length) set(tags().concat(typed));
  };
  typing.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === ",") {
      event.preventDefault(); commit();  // never sends the form: on a review that would approve
    } else if (event.key === "Backspace" && !typing.value && tags().length) {
      event.preventDefault(); set(tags().slice(0, -1));
    }
  });
  typing.addEventListener("input", (event) => {
    event.stopPropagation();  // not a field of the form: only the chips count
    if (/[,;]/.test(typing.value)) commit();
  });
  typing.addEventListener("blur", commit);
  source.form.addEventListener("submit", commit);
  source.form.addEventListener("kb:restored", render);
  source.hidden = true;
  box.append(typing);
  source.after(box);
  render();
}

function checkItem(f) {
  const li = document.createElement("li");
  li.className = f.level;
  const level = document.createElement("strong");
  level.textContent = f.level;
  li.append(level, " · " + f.field + (f.excerpt ? " “" + f.excerpt + "”" : "") + ": " + f.message);
  if (f.suggestion) {
    const q = document.createElement("q");
    q.textContent = f.suggestion;
    li.append(" — try: ", q);
  }
  return li;
}

function initEntryPreview(form, pane) {
  const list = pane.querySelector("#live-checks");
  const count = pane.querySelector("#checks-count");
  let asked = 0;
  const plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");
  async function update() {
    const mine = ++asked;
    const body = {};
    for (const name of ["title", "answer", "phone", "category", "tags"]) {
      if (form.elements[name]) body[name] = form.elements[name].value;
    }
    let response;
    try {
      response = await postJson(pane.dataset.url, body);
    } catch (err) { return; }  // offline: the checks run again when the form is sent
    if (mine !== asked) return;  // a newer keystroke has asked since
    if (!response.ok) {
      count.textContent = response.status === 401 ? "not updated: sign in again" : "not updated";
      return;
    }
    const data = await response.json();
    if (mine !== asked) return;
    pane.querySelector("#preview-answer").innerHTML = data.answer_html;  // sanitised by the server
    pane.querySelector("#preview-phone").innerHTML = data.phone_html;
    list.replaceChildren(...data.findings.map(checkItem));
    if (!data.findings.length) {
      const ok = document.createElement("li");
      ok.className = "ok"; ok.textContent = "Nothing to fix.";
      list.append(ok);
    }
    count.textContent = plural(data.errors, "error") + ", " + plural(data.warnings, "warning");
  }
  const later = debounce(update, 300);
  form.addEventListener("input", (event) => {
    // the tag chips tell the form itself
    if (["title", "answer", "phone", "category", "tags"].includes(event.target.name) ||
        event.target === form) later();
  });
  form.addEventListener("kb:restored", update);
}

function initEntryForms() {
  for (const form of document.querySelectorAll("form.entry-form")) {
    const tags = form.querySelector("input[name=tags][data-chips]");
    if (tags) initTagChips(tags);
    const pane = document.getElementById("entry-preview");
    if (pane && form.elements.answer) initEntryPreview(form, pane);
  }
}

// ---- long forms (edit, propose, review, greeting): nothing typed is lost ------------------
//
// The form's fields are kept in this tab while the person types. Before sending, the page
// asks whether the sign-in still holds; if not, it signs in again in place, takes the new
// security token and sends the form as it was. Coming back to a form that was not saved
// (a detour, an error page) brings the text back.

function initKeptForms() {
  for (const form of document.querySelectorAll("form[data-keep]")) {
    const key = "kb.form." + location.pathname;
    const base = form.querySelector("input[name=base_version]");
    const fields = () => [...form.elements].filter((el) => el.name && el.name !== "csrf_token" &&
      el.name !== "base_version" && el.type !== "hidden" && el.type !== "submit" && el.type !== "button" &&
      !el.hasAttribute("data-nokeep") && el.type !== "file");  // worked out by the server; a file cannot be set
    const save = (submitted) => {
      const values = {};
      for (const el of fields()) values[el.name] = el.value;
      sessionStorage.setItem(key, JSON.stringify({base: base ? base.value : "", values, submitted}));
    };
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(key) || "null"); } catch (err) { saved = null; }
    if (saved && (!base || saved.base === base.value)) {
      let restored = false;
      for (const el of fields()) {
        if (el.name in saved.values && el.value !== saved.values[el.name]) {
          el.value = saved.values[el.name]; restored = true;
        }
      }
      if (restored) {
        const note = document.createElement("p");
        note.className = "flash"; note.id = "restored"; note.setAttribute("role", "status");
        note.textContent = "Your unsaved text is back, as you left it. ";
        const drop = document.createElement("button");
        drop.type = "button"; drop.className = "link"; drop.textContent = "Start again from the saved version";
        drop.addEventListener("click", () => { sessionStorage.removeItem(key); location.reload(); });
        note.append(drop);
        form.before(note);
        form.dispatchEvent(new Event("kb:restored"));  // chips and preview show the text back
      }
    } else if (saved) {
      sessionStorage.removeItem(key);  // saved meanwhile: that text is in the history now
    }
    form.addEventListener("input", () => save(false));
    form.addEventListener("submit", async (event) => {
      if (form.dataset.checked) return;  // checked: this is the real send
      event.preventDefault();
      const submitter = event.submitter;
      save(true);
      let alive = true;
      try {
        const response = await fetch("/api/session", {headers: {Accept: "application/json"}});
        alive = response.ok;
      } catch (err) { alive = true; }  // offline: let the browser say so
      const send = () => { form.dataset.checked = "1"; form.requestSubmit(submitter || undefined); };
      if (alive) send();
      else signInAgain("Not sent yet: your sign-in has ended. Sign in again and it is sent as you wrote it.", send);
    });
  }
}

// ---- a shared part (greeting, closing, ...): checks and preview as it is typed ----------

function initPartChecks() {
  const form = document.getElementById("part-form");
  if (!form) return;
  const text = document.getElementById("part-text");
  const checks = document.getElementById("part-checks");
  const preview = document.getElementById("part-preview");
  let latest = 0;  // answers to an older keystroke are dropped
  async function run() {
    const id = ++latest;
    try {
      const response = await postJson(form.dataset.check, {text: text.value});
      if (!response.ok || id !== latest) return;  // the Preview button still works
      const data = await response.json();
      if (id !== latest) return;
      checks.innerHTML = data.checks_html;    // rendered and escaped on the server
      preview.innerHTML = data.preview_html;  // sanitised on the server, values escaped
      text.setAttribute("aria-invalid", String(data.errors > 0));
      document.body.dataset.partChecked = String(id);
    } catch (err) { /* offline: the page's own checks stay until the next answer */ }
  }
  text.addEventListener("input", debounce(run, 200));
  if (text.value !== text.defaultValue) run();  // unsaved text brought back: check it
}

// Buttons that copy a piece of text on the page (one-time passwords, tokens).
function initCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(source.textContent.trim());
        button.textContent = "Copied";
      } catch (err) {
        window.getSelection().selectAllChildren(source);
        button.textContent = "Selected: press Ctrl+C";
      }
    });
  }
}

// The header's menu closes on a click elsewhere or on Esc, like any menu.
function initMenus() {
  const menus = [...document.querySelectorAll("details.menu")];
  document.addEventListener("click", (event) => {
    for (const menu of menus) if (!menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const menu of menus) {
      if (menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
    }
  });
}

// The header's counts follow what happens elsewhere (a proposal arriving, a review):
// asked for every 20 seconds while the page is in front, and when it comes back to it.
const COUNT_EVERY_MS = 20000;

function setCount(link, n, what) {
  if (!link) return;
  let badge = link.querySelector(".count");
  if (!n) { if (badge) badge.remove(); return; }
  if (!badge) {
    badge = document.createElement("span");
    badge.className = "count";
    link.append(" ", badge);
  }
  badge.textContent = String(n);
  badge.setAttribute("aria-label", n + " " + what);
}

function initLiveCounts() {
  const link = document.getElementById("nav-notifications");
  if (!link) return;  // signed out
  let asking = false;
  async function refresh() {
    if (asking || document.visibilityState !== "visible") return;
    asking = true;
    try {
      const response = await fetch("/notifications/count", {headers: {Accept: "application/json"}, redirect: "manual"});
      if (!response.ok) return;
      const data = await response.json();
      setCount(link, data.unread, "unread");
      setCount(document.getElementById("menu-nav-notifications"), data.unread, "unread");
      if (data.review !== null) {
        setCount(document.getElementById("nav-review"), data.review, "waiting");
        setCount(document.getElementById("menu-nav-review"), data.review, "waiting");
      }
      setCount(document.querySelector("#narrow-menu summary"), data.unread + (data.review || 0), "new");
    } catch (err) {
      // offline for a moment: the next round asks again
    } finally {
      asking = false;
    }
  }
  setInterval(refresh, COUNT_EVERY_MS);
  document.addEventListener("visibilitychange", refresh);
  window.kbRefreshCounts = refresh;  // tests and other scripts can ask at once
}

document.addEventListener("DOMContentLoaded", () => {
  initLiveCounts();
  initMenus(); initCopyButtons(); initShortcuts(); initSearch(); initCompose();
  initEntryForms(); initKeptForms(); initPartChecks();  // chips first: they turn typed words into tags before a send
  document.documentElement.dataset.ready = "1";  // the keys work from here on
});
