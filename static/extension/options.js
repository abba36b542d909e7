// The extension's options: which kb, the connection, and how the panel opens.
const $ = (id) => document.getElementById(id);

function say(text, kind) {
  $("status").textContent = text;
  $("status").className = kind || "";
}

async function refresh() {
  const state = await chrome.runtime.sendMessage({type: "status"});
  if (state.kb) $("kb").value = state.kb;
  $("kb").disabled = Boolean(state.fixed);
  say(state.message, state.connected ? "ok" : "problem");
}

$("address-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const saved = await chrome.runtime.sendMessage({type: "set-address", kb: $("kb").value});
  if (!saved.ok) { say(saved.message, "problem"); return; }
  // the one host the extension calls; asked for here, where the click allows a prompt
  const granted = await chrome.permissions.request({origins: [saved.kb + "/*"]});
  if (!granted) { say("The extension needs your permission to reach " + saved.kb + ".", "problem"); return; }
  await chrome.runtime.sendMessage({type: "open-connect"});
  refresh();
});

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const reply = await chrome.runtime.sendMessage({type: "set-token", token: $("token").value});
  $("token").value = "";
  say(reply.message, reply.ok ? "ok" : "problem");
});

$("disconnect").addEventListener("click", async () => {
  await chrome.runtime.sendMessage({type: "disconnect"});
  refresh();
});

// The shortcut: the keys pressed in the field, with at least one of Alt, Ctrl or Meta.
$("shortcut").addEventListener("keydown", async (event) => {
  if (event.key === "Tab") return;
  event.preventDefault();
  const key = /^Key[A-Z]$/.test(event.code) ? event.code.slice(3)
    : /^Digit[0-9]$/.test(event.code) ? event.code.slice(5) : /^F\d+$/.test(event.key) ? event.key : "";
  if (!key || !(event.altKey || event.ctrlKey || event.metaKey)) {
    say("A shortcut is a letter, digit or F-key with Alt, Ctrl or Meta, such as Alt+K.", "problem");
    return;
  }
  const shortcut = [event.ctrlKey && "Ctrl", event.altKey && "Alt", event.shiftKey && "Shift",
                    event.metaKey && "Meta", key].filter(Boolean).join("+");
  $("shortcut").value = shortcut;
  await chrome.storage.sync.set({shortcut});
  say("The panel now opens with " + shortcut + ".", "ok");
});

$("colons").addEventListener("change", () => chrome.storage.sync.set({colons: $("colons").checked}));

(async () => {
  const mine = await chrome.storage.sync.get(["shortcut", "colons"]);
  let policy = {};
  try { policy = await chrome.storage.managed.get(null); } catch (err) { /* no policy */ }
  $("shortcut").value = policy.shortcut || mine.shortcut || "Alt+K";
  $("colons").checked = (policy.colons ?? mine.colons) !== false;
  $("shortcut").disabled = Boolean(policy.shortcut);
  $("colons").disabled = typeof policy.colons === "boolean";
  $("policy").hidden = !(policy.shortcut || typeof policy.colons === "boolean" || policy.kb_url);
  refresh();
})();
