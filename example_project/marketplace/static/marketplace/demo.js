// The demo page's client: log in for a JWT, open the notification socket, render its frames.
// Plain JavaScript, no build step. Text from the server is set with textContent, never as HTML.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("demo-config").textContent);
  const $ = (id) => document.getElementById(id);

  // What each close code asks of a client (docs/protocol.md has the full table).
  const CLOSE_REASONS = {
    1000: "closed normally",
    1006: "connection lost (is the server running, and is this origin allowed?)",
    4001: "authentication failed: the token is missing, invalid, expired or not an access token",
    4003: "permission denied: this user may not read any vendor's notifications",
  };

  const state = {
    access: null,
    refresh: null,
    socket: null,
    unread: new Map(), // id -> item, unread only
    history: new Map(), // id -> item, from load_more pages and live arrivals
    nextPage: 1,
    triedRefresh: false,
  };

  // --- page furniture ------------------------------------------------------------------

  function setStatus(text, kind = "") {
    $("status").textContent = text;
    $("status").dataset.kind = kind;
  }

  function showSession(visible) {
    for (const id of ["session-panel", "unread-panel", "history-panel"]) $(id).hidden = !visible;
  }

  function logFrame(arrow, text) {
    const entry = document.createElement("li");
    entry.textContent = `${arrow} ${text.length > 400 ? text.slice(0, 400) + "…" : text}`;
    $("log").prepend(entry);
    while ($("log").children.length > 40) $("log").lastElementChild.remove();
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- HTTP: tokens and the demo endpoint ---------------------------------------------

  async function postJSON(url, body, token) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
    return data;
  }

  async function logIn(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    try {
      const tokens = await postJSON("/api/token/", {
        username: form.get("username"),
        password: form.get("password"),
      });
      state.access = tokens.access;
      state.refresh = tokens.refresh;
      state.triedRefresh = false;
      connect();
    } catch (error) {
      setStatus(`Login failed: ${error.message}`, "error");
    }
  }

  // Close code 4001 means "get a fresh access token, then reconnect": try that once.
  async function refreshAndReconnect() {
    state.triedRefresh = true;
    try {
      const tokens = await postJSON("/api/token/refresh/", { refresh: state.refresh });
      state.access = tokens.access;
      setStatus("Access token refreshed; reconnecting…");
      connect();
    } catch (error) {
      setStatus(`Could not refresh the token (${error.message}); log in again.`, "error");
    }
  }

  async function sendDemoNotification(category) {
    try {
      await postJSON("/demo/notify/", { category }, state.access);
    } catch (error) {
      setStatus(`Could not send a demo notification: ${error.message}`, "error");
    }
  }

  // --- the socket ----------------------------------------------------------------------

  function connect() {
    disconnect();
    state.unread.clear();
    state.history.clear();
    state.nextPage = 1;
    render();
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ [config.tokenParameter]: state.access });
    const socket = new WebSocket(`${scheme}://${location.host}${config.websocketPath}?${query}`);
    state.socket = socket;
    setStatus("Connecting…");
    socket.addEventListener("message", (event) => {
      logFrame("⇣", event.data);
      handleFrame(JSON.parse(event.data));
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return; // closed on purpose, or replaced by a newer socket
      state.socket = null;
      showSession(false);
      const reason = CLOSE_REASONS[event.code] || "closed";
      setStatus(`Socket closed with code ${event.code}: ${reason}.`, "error");
      if (event.code === 4001 && state.refresh && !state.triedRefresh) refreshAndReconnect();
    });
  }

  function disconnect() {
    const socket = state.socket;
    state.socket = null;
    if (socket) {
      socket.close(1000);
      showSession(false);
      setStatus("Disconnected.");
    }
  }

  function send(frame) {
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return;
    const text = JSON.stringify(frame);
    logFrame("⇡", text);
    state.socket.send(text);
  }

  // --- frames from the server ----------------------------------------------------------

  function itemsOf(grouped) {
    return Object.values(grouped).flat();
  }

  function handleFrame(frame) {
    switch (frame.action) {
      case "unread_notifications":
        state.unread = new Map(itemsOf(frame.notifications).map((item) => [item.id, item]));
        state.triedRefresh = false;
        if (!state.history.size) $("load-more").hidden = false;
        showSession(true);
        setStatus("Connected: new notifications appear here as they are created.", "ok");
        break;
      case "new_notification": {
        const item = { ...frame.notification, fresh: true };
        if (!item.is_read) state.unread.set(item.id, item);
        if (state.history.size) state.history.set(item.id, item);
        break;
      }
      case "mark_read":
        if (frame.status === "success") {
          state.unread.delete(frame.notification_id);
          const item = state.history.get(frame.notification_id);
          if (item) item.is_read = true;
        } else {
          setStatus(`Could not mark #${frame.notification_id} read: ${frame.error}.`, "error");
        }
        break;
      case "load_more":
        for (const item of itemsOf(frame.notifications)) {
          // An item marked read here may still be unread on an older page copy: keep ours.
          if (!state.history.has(item.id)) state.history.set(item.id, item);
        }
        state.nextPage = frame.page + 1;
        $("load-more").hidden = !frame.has_more;
        break;
      case "error":
        setStatus(`Server error ${frame.error}: ${frame.message}`, "error");
        break;
    }
    render();
  }

  // --- rendering -----------------------------------------------------------------------

  function render() {
    $("unread-badge").textContent = state.unread.size;
    $("unread-badge").hidden = state.unread.size === 0;
    renderGroups($("unread"), [...state.unread.values()], "No unread notifications.");
    renderGroups($("history"), [...state.history.values()], "Press “Load more” to page through every notification.");
  }

  // Items grouped by category label, categories in the configured order, newest first
  // (ids only grow, so a higher id is a newer notification).
  function renderGroups(container, items, emptyText) {
    container.replaceChildren();
    if (!items.length) {
      container.append(element("p", "empty", emptyText));
      return;
    }
    const order = (label) => {
      const index = config.categories.indexOf(label);
      return index === -1 ? config.categories.length : index;
    };
    const groups = new Map();
    items.sort((a, b) => b.id - a.id);
    for (const item of items) {
      if (!groups.has(item.category)) groups.set(item.category, []);
      groups.get(item.category).push(item);
    }
    const labels = [...groups.keys()].sort((a, b) => order(a) - order(b) || a.localeCompare(b));
    for (const label of labels) {
      const group = groups.get(label);
      const unread = group.filter((item) => !item.is_read).length;
      const heading = element("h3", "", `${label} `);
      if (unread) heading.append(element("span", "badge", String(unread)));
      const list = element("ul", "items");
      for (const item of group) list.append(renderItem(item));
      container.append(heading, list);
    }
  }

  function renderItem(item) {
    const row = element("li", `item ${item.is_read ? "read" : "unread"}`);
    if (item.fresh) row.classList.add("fresh");
    const text = element("div", "text");
    text.append(element("div", "message", item.message));
    const readAt = item.is_read ? ` · read ${item.readed_at || "just now"}` : "";
    text.append(element("div", "meta", `#${item.id} · ${item.created_at}${readAt}`));
    row.append(text);
    if (!item.is_read) {
      const button = element("button", "", "Mark read");
      button.type = "button";
      button.addEventListener("click", () => {
        send({ action: "mark_read", notification_id: item.id });
      });
      row.append(button);
    }
    return row;
  }

  // --- wiring --------------------------------------------------------------------------

  $("login-form").addEventListener("submit", logIn);
  $("disconnect").addEventListener("click", disconnect);
  $("load-more").addEventListener("click", () => {
    send({ action: "load_more", page: state.nextPage });
  });
  for (const category of config.categories) {
    const button = element("button", "secondary", category.replace(/ Notifications$/, ""));
    button.type = "button";
    button.title = `Create a "${category}" notification for your vendor`;
    button.addEventListener("click", () => sendDemoNotification(category));
    $("notify-buttons").append(button);
  }

  // A ready link (…/?token=<access>) connects at once; the token leaves the address bar.
  const linkToken = new URLSearchParams(location.search).get(config.tokenParameter);
  if (linkToken) {
    history.replaceState(null, "", location.pathname);
    state.access = linkToken;
    connect();
  }
  render();
})();
