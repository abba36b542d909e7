// kb's service worker: the only part of the extension that talks to kb. It keeps the
// kb address and the token, and calls kb's JSON API for the panel (content.js) and the
// options page. Requests go to the configured kb address and nowhere else; the token
// never leaves this worker and the options page.

const TIMEOUT_MS = 8000;
const RULES_FOR_MS = 60000;  // page-value rules are read again after a minute
let rules = {at: 0, kb: "", sites: []};

// content scripts run inside other sites' pages: they may not read the token
chrome.storage.local.setAccessLevel({accessLevel: "TRUSTED_CONTEXTS"});

function originOf(url) {
  try {
    const u = new URL(String(url || "").trim());
    return /^https?:$/.test(u.protocol) ? u.origin : "";
  } catch (err) {
    return "";
  }
}

async function managed() {
  try { return await chrome.storage.managed.get(null); } catch (err) { return {}; }
}

// The kb address (an admin's policy wins), the token, and why the last one stopped.
async function settings() {
  const [local, policy] = await Promise.all([
    chrome.storage.local.get(["kb_url", "token", "problem"]), managed()]);
  const fixed = originOf(policy.kb_url);
  return {kb: fixed || local.kb_url || "", token: local.token || "", problem: local.problem || "",
          fixed: Boolean(fixed)};
}

chrome.runtime.onInstalled.addListener(async ({reason}) => {
  const {kb_url: known} = await chrome.storage.local.get("kb_url");
  if (!known) {
    try {  // the zip kb serves names the kb it came from; the plain folder does not
      const preset = await (await fetch(chrome.runtime.getURL("kb.json"))).json();
      if (originOf(preset.kb_url)) await chrome.storage.local.set({kb_url: originOf(preset.kb_url)});
    } catch (err) { /* the options page asks for the address */ }
  }
  if (reason === "install") openConnect();
});

chrome.action.onClicked.addListener(() => chrome.runtime.openOptionsPage());

// Where the agent connects: kb's own page when the address is known, else the options.
async function openConnect() {
  const s = await settings();
  if (s.kb) chrome.tabs.create({url: s.kb + "/extension"});
  else chrome.runtime.openOptionsPage();
}

function fail(error, message, status) {
  return {error, message, status};
}

async function api(method, path, body) {
  const s = await settings();
  if (!s.kb) {
    return fail("setup", "The kb extension does not know your kb's address yet. Open its " +
                         "options (the kb icon in the toolbar) and connect it.");
  }
  if (!s.token) {
    return fail("connect", s.problem ||
      `Not connected to kb yet: open ${s.kb}/extension and press Connect the extension.`);
  }
  let response;
  try {
    response = await fetch(s.kb + path, {
      method, credentials: "omit", cache: "no-store", redirect: "error",
      headers: {Authorization: "Bearer " + s.token, Accept: "application/json",
                ...(body ? {"Content-Type": "application/json"} : {})},
      body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    return fail("offline", `kb did not answer at ${s.kb}. Check that you are online and that ` +
                           "kb is running, then try again.");
  }
  let data = null;
  try { data = await response.json(); } catch (err) { /* not kb's JSON */ }
  if (response.status === 401) {
    // the token is dead for good: forget it, and remember why for the next panel
    const said = (data && data.message) || "";
    const problem = (/signed out/i.test(said)
      ? "You signed out of kb, which also ends this browser's connection."
      : "kb no longer accepts this browser's connection: it was revoked, or your account " +
        "was reset or disabled.") +
      " Sign in to kb and press Connect the extension on your profile page.";
    await chrome.storage.local.remove("token");
    await chrome.storage.local.set({problem});
    return fail("connect", problem, 401);
  }
  if (!response.ok || data === null) {
    return fail("server", (data && data.message) ||
      `kb answered with an error (${response.status}). Try again in a moment.`, response.status);
  }
  return {data};
}

async function pageRules(kb) {
  if (rules.kb === kb && Date.now() - rules.at < RULES_FOR_MS) return rules.sites;
  const reply = await api("GET", "/api/extension/page-values");
  if (reply.error) return [];  // the panel works without offers
  rules = {at: Date.now(), kb, sites: reply.data.sites || []};
  return rules.sites;
}

// The entry's fields, and the values the page shows for them (the editor's own frame
// first, then the top page, where helpdesks show the ticket).
async function fields(message, sender) {
  const s = await settings();
  const [reply, sites] = await Promise.all([
    api("GET", `/api/entries/${encodeURIComponent(message.slug)}/fields` +
               (message.chat ? "?channel=chat" : "")), pageRules(s.kb)]);
  if (reply.error) return reply;
  let offered = {};
  if (sites.length && sender.tab) {
    const frames = sender.frameId ? [sender.frameId, 0] : [0];
    for (const frameId of frames) {
      try {
        const found = await chrome.tabs.sendMessage(sender.tab.id, {type: "page-values", sites},
                                                    {frameId});
        offered = {...(found || {}), ...offered};
      } catch (err) { /* a frame without the script (a browser page) */ }
    }
  }
  return {data: reply.data, offered};
}

// A token handed over by kb's own page: taken only from the kb this extension is set up
// for, so no other site can connect it to a server of its choosing.
async function connect(token, sender) {
  const s = await settings();
  if (!s.kb) {
    return {ok: false, message: "The extension does not know this kb yet: enter its address " +
                                "in the extension's options, then press Connect again."};
  }
  if (sender.origin !== s.kb) {
    return {ok: false, message: `The extension is set up for ${s.kb}, not this site, so it ` +
                                "did not take the token. Change the address in its options if " +
                                "this is your kb."};
  }
  return useToken(token);
}

async function useToken(token) {
  token = String(token || "").trim();
  if (!token) return {ok: false, message: "Paste the token kb showed you."};
  const old = await chrome.storage.local.get(["token", "problem"]);
  await chrome.storage.local.set({token});
  await chrome.storage.local.remove("problem");
  const reply = await api("GET", "/api/session");
  if (reply.error) {
    if (reply.error !== "connect") {  // not checked (kb unreachable): keep what was there
      if (old.token) await chrome.storage.local.set(old);
      else await chrome.storage.local.remove("token");
    }
    return {ok: false, message: reply.message};
  }
  const {shortcut} = await chrome.storage.sync.get("shortcut");
  return {ok: true, message: `Connected: the extension works as ${reply.data.username} in ` +
                             `this browser. In a reply box, type :: or press ${shortcut || "Alt+K"}.`};
}

async function status() {
  const s = await settings();
  if (!s.kb) return {connected: false, message: "Not set up: enter your kb's address."};
  if (!s.token) return {connected: false, kb: s.kb, fixed: s.fixed,
                        message: s.problem || "Not connected yet."};
  const reply = await api("GET", "/api/session");
  if (reply.error) return {connected: false, kb: s.kb, fixed: s.fixed, message: reply.message};
  return {connected: true, kb: s.kb, fixed: s.fixed,
          message: `Connected to ${s.kb} as ${reply.data.username}.`};
}

async function setAddress(url) {
  const s = await settings();
  if (s.fixed) return {ok: false, message: `Your admin set the kb address (${s.kb}).`};
  const kb = originOf(url);
  if (!kb) return {ok: false, message: "Write the address you open kb at, such as https://kb.example.com."};
  if (kb !== s.kb) {
    await chrome.storage.local.remove(["token", "problem"]);  // a token is for one kb
    await chrome.storage.local.set({kb_url: kb});
  }
  return {ok: true, kb};
}

async function handle(message, sender) {
  const mine = sender.origin === new URL(chrome.runtime.getURL("")).origin;  // options page
  switch (message.type) {
    case "search": {
      const params = new URLSearchParams({q: message.q, typing: "1", limit: "8"});
      if (message.after) params.set("after", message.after);
      return api("GET", "/api/search?" + params);
    }
    case "fields": return fields(message, sender);
    case "rules": return {sites: await pageRules((await settings()).kb)};
    case "compose":
      return api("POST", `/api/compose/${encodeURIComponent(message.slug)}`, {values: message.values});
    case "event":
      return api("POST", "/api/events", {kind: message.kind, slug: message.slug,
                                         version: message.version, search_id: message.search_id});
    case "connect": return connect(message.token, sender);
    case "open-connect": await openConnect(); return {ok: true};
    case "kb-page": {  // kb's own extension page asks whether it is installed and connected
      const s = await settings();
      return sender.origin === s.kb ? status() : {};
    }
  }
  if (!mine) return {error: "refused", message: "Not for this page."};
  switch (message.type) {
    case "status": return status();
    case "set-address": return setAddress(message.kb);
    case "set-token": return useToken(message.token);
    case "disconnect": await chrome.storage.local.remove(["token", "problem"]); return {ok: true};
  }
  return {error: "unknown", message: "Unknown request."};
}

chrome.runtime.onMessage.addListener((message, sender, reply) => {
  handle(message || {}, sender).then(reply, (err) =>
    reply(fail("bug", "The kb extension met a problem: " + err.message)));
  return true;  // the reply comes later
});
