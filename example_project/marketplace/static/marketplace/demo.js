// The demo page: log in for a JWT, let the app's browser client (client.js) keep the socket
// and the state, and render that state. No build step. Text from the server is set with
// textContent, never as HTML.
import { NotificationClient, collapsedCount } from "django-vendor-notifications/client";

const config = JSON.parse(document.getElementById("demo-config").textContent);
const $ = (id) => document.getElementById(id);

const tokens = { access: null, refresh: null };
let client = null;
const fresh = new Set(); // ids that arrived while the page was open: highlighted

// --- HTTP: tokens and the demo endpoint --------------------------------------------------

async function postJSON(url, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return data;
}

// The client calls this before every connect ("connect"), after close code 4001
// ("rejected": the token is no good, get a fresh one) and before the token expires
// ("refresh"). Returning null stops the client: the user must log in again.
async function getToken({ reason }) {
  if (reason === "connect" || !tokens.refresh) return reason === "rejected" ? null : tokens.access;
  try {
    tokens.access = (await postJSON("/api/token/refresh/", { refresh: tokens.refresh })).access;
    return tokens.access;
  } catch {
    return null;
  }
}

async function logIn(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    Object.assign(
      tokens,
      await postJSON("/api/token/", {
        username: form.get("username"),
        password: form.get("password"),
      }),
    );
    start();
  } catch (error) {
    setStatus("error", `Login failed: ${error.message}`);
  }
}

async function sendDemoNotification(category) {
  try {
    await postJSON("/demo/notify/", { category }, tokens.access);
  } catch (error) {
    setStatus("error", `Could not send a demo notification: ${error.message}`);
  }
}

// The badge over HTTP, before the socket opens: one cheap request (the counts endpoint,
// docs/rest.md) so the page shows the unread total at once; the socket's snapshot then
// takes over. A page that never opens a socket could poll this with If-None-Match.
let httpTotal = null;
let snapshotSeen = false;

async function showCountsOverHttp() {
  try {
    const response = await fetch(config.countsUrl, {
      headers: { Authorization: `Bearer ${tokens.access}` },
    });
    if (!response.ok) return;
    const counts = await response.json();
    httpTotal = counts.unread_total;
    render();
  } catch {
    // The socket brings the counts anyway.
  }
}

// --- the client --------------------------------------------------------------------------

function start() {
  client?.close();
  fresh.clear();
  httpTotal = null;
  snapshotSeen = false;
  showCountsOverHttp();
  client = new NotificationClient({ url: config.websocketPath, getToken });
  client.addEventListener("status", (event) => showStatus(event.detail));
  client.addEventListener("snapshot", () => {
    snapshotSeen = true;
    showPanels(true);
    setStatus("open", "Connected: new notifications appear here as they are created.");
  });
  client.addEventListener("error", (event) => showError(event.detail));
  client.addEventListener("notification", (event) => fresh.add(event.detail.notification.id));
  client.addEventListener("change", render);
  client.addEventListener("frame", (event) => logFrame(event.detail));
}

function stop() {
  client?.close();
  client = null;
  showPanels(false);
  render();
}

const CLOSE_REASONS = {
  1000: "closed",
  1006: "connection lost",
  4013: "the server cannot deliver right now",
  4029: "too many requests",
};

function showStatus({ status, code, willReconnect, retryIn }) {
  if (status === "connecting") setStatus("connecting", "Connecting…");
  if (status === "closed" && willReconnect) {
    const why = CLOSE_REASONS[code] || `code ${code}`;
    setStatus("reconnecting", `Disconnected (${why}); reconnecting in ${(retryIn / 1000).toFixed(1)} s…`);
  } else if (status === "closed" && code === 1000) {
    setStatus("closed", "Disconnected.");
  }
}

// Errors that stop the client, and protocol errors nobody awaited.
function showError({ code, message }) {
  const text = {
    forbidden: "Permission denied (4003): this user may not read any vendor's notifications.",
    unauthorized: "The server refused a fresh token (4001): log in again.",
    no_token: "No valid token (4001): log in again.",
  }[code];
  if (text) {
    showPanels(false);
    setStatus("stopped", text);
  } else {
    setStatus("error", `Error ${code}: ${message}`);
  }
}

async function markAllRead(category) {
  try {
    await client.markAllRead(category);
  } catch (error) {
    if (error.code !== "unknown_action") setStatus("error", `Mark all read failed: ${error.message}`);
    render(); // hides the buttons once the server has said it does not know the action
  }
}

async function act(promise, what) {
  try {
    await promise;
  } catch (error) {
    setStatus("error", `${what} failed: ${error.code}`);
  }
}

// --- rendering ---------------------------------------------------------------------------

function setStatus(state, text) {
  $("status").textContent = text;
  $("status").dataset.state = state;
}

function showPanels(connected) {
  $("login-panel").hidden = connected;
  $("session-panel").hidden = !connected;
  $("inbox-panel").hidden = !connected;
}

function logFrame(frame) {
  const text = JSON.stringify(frame);
  const entry = element("li", "", text.length > 300 ? `${text.slice(0, 300)}…` : text);
  $("log").prepend(entry);
  while ($("log").children.length > 30) $("log").lastElementChild.remove();
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(text, onClick, className = "") {
  const node = element("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function render() {
  const state = client?.state;
  // The socket's state once it has its snapshot; until then, the counts fetched over HTTP.
  const total = (snapshotSeen ? state?.unreadTotal : httpTotal) ?? 0;
  $("unread-badge").textContent = String(total);
  $("unread-badge").hidden = total === 0;
  document.title = total ? `(${total}) Vendor notifications` : "Vendor notifications";
  const canMarkAll = !client?.unsupportedActions.has("mark_all_read");
  $("mark-all-read").hidden = !canMarkAll;
  $("mark-all-note").hidden = canMarkAll;
  $("mark-all-read").disabled = total === 0;
  $("load-more").hidden = !state?.hasMore;

  // Configured categories first, then any other label the server sent.
  const labels = [...new Set([...config.categories, ...Object.keys(state?.byCategory ?? {})])];
  $("categories").replaceChildren(
    ...labels.map((label) => renderCategory(label, state, canMarkAll)),
  );
}

function renderCategory(label, state, canMarkAll) {
  const items = state?.byCategory[label] ?? [];
  const unread = state?.unreadCounts[label] ?? 0;
  const section = element("section", "category");
  section.dataset.category = label;
  const heading = element("h3", "", `${label} `);
  const badge = element("span", "badge", String(unread));
  badge.hidden = unread === 0;
  heading.append(badge);
  if (canMarkAll && unread) {
    heading.append(button("Mark all read", () => markAllRead(label), "link"));
  }
  section.append(heading);
  if (!items.length) {
    section.append(element("p", "empty", "Nothing here yet."));
    return section;
  }
  const list = element("ul", "items");
  list.append(...items.map(renderItem));
  section.append(list);
  return section;
}

/** How a collapsed item reads, by its collapse_key (the demo endpoint's keys). */
const COLLAPSED_LABELS = { "new-order": (count) => `${count} new orders` };

function messageOf(item) {
  const count = collapsedCount(item);
  if (count === 1) return item.message;
  const label = COLLAPSED_LABELS[item.collapse_key];
  return label ? `${label(count)} · latest: ${item.message}` : `${count} × ${item.message}`;
}

function renderItem(item) {
  const row = element("li", `item ${item.is_read ? "read" : "unread"}`);
  row.dataset.id = item.id;
  if (fresh.has(item.id)) row.classList.add("fresh");
  const text = element("div", "text");
  text.append(element("div", "message", messageOf(item)));
  const readAt = item.is_read ? ` · read ${item.readed_at || "just now"}` : "";
  text.append(element("div", "meta", `#${item.id} · ${item.created_at}${readAt}`));
  row.append(text);
  if (!item.is_read) {
    row.append(button("Mark read", () => act(client.markRead(item.id), "Mark read")));
  }
  return row;
}

// --- wiring ------------------------------------------------------------------------------

$("login-form").addEventListener("submit", logIn);
$("disconnect").addEventListener("click", stop);
$("mark-all-read").addEventListener("click", () => markAllRead());
$("load-more").addEventListener("click", () => act(client.loadMore(), "Load more"));
for (const category of config.categories) {
  const label = category.replace(/ Notifications$/, "");
  const node = button(label, () => sendDemoNotification(category), "secondary");
  node.title = `Create a "${category}" notification for your vendor`;
  $("notify-buttons").append(node);
}

// A ready link (…/#token=<access>) connects at once. The token is in the fragment, which the
// browser never sends to the server (so no access log holds it), and leaves the address bar.
const linkToken = new URLSearchParams(location.hash.slice(1)).get("token");
if (linkToken) {
  history.replaceState(null, "", location.pathname + location.search);
  tokens.access = linkToken;
  start();
}
render();
