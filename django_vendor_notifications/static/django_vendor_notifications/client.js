// A browser client for the vendor notification socket (docs/client.md).
//
// An ES module with no dependencies. It connects with an access token, reconnects with
// exponential backoff and full jitter, follows the server's close codes, resumes from the
// newest notification it holds, drops duplicates by id, and keeps a small state object that
// it announces through DOM events (it is an EventTarget).
//
//   import { NotificationClient } from "/static/django_vendor_notifications/client.js";
//   const client = new NotificationClient({ url: "/v1/ws/notifications/", getToken });
//   client.addEventListener("change", () => render(client.state));

/** Close codes the server uses (django_vendor_notifications.protocol.CloseCode). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  ABNORMAL: 1006,
  GOING_AWAY: 1001,
  SERVICE_RESTART: 1012,
  AUTHENTICATION_FAILED: 4001,
  PERMISSION_DENIED: 4003,
  SERVER_RESTARTING: 4012,
  TRY_AGAIN_LATER: 4013,
  TOO_MANY_REQUESTS: 4029,
});

/** Closes that mean "this server process is stopping": reconnect without backing off. */
const RESTART_CODES = new Set([
  CloseCode.GOING_AWAY,
  CloseCode.SERVICE_RESTART,
  CloseCode.SERVER_RESTARTING,
]);

const DEFAULTS = Object.freeze({
  useSubprotocol: true,
  tokenParameter: "token",
  backoff: { initial: 500, max: 30000, factor: 2 },
  requestTimeout: 10000,
  // Send refresh_token this long before the access token's "exp".
  refreshMargin: 60000,
  // "query": ?since=<newest id> on the URL; "sync": a sync action after the snapshot.
  resume: "query",
  // "auto": try before_id once, fall back to page numbers on an older server.
  pagination: "auto",
  pageSize: 20,
  autoConnect: true,
});

const OPEN = 1; // WebSocket.OPEN, the same in every implementation
const MAX_TIMER = 2 ** 31 - 1; // setTimeout's largest delay

/** A request the server refused, or that got no reply. `code` is the protocol's error code,
 * or one of the client's own: "timeout", "not_connected", "disconnected". */
export class RequestError extends Error {
  constructor(code, message, frame = null) {
    super(message || code);
    this.name = "RequestError";
    this.code = code;
    this.frame = frame;
  }
}

/**
 * How many unread notifications `item` stands for: its `collapsed_count` when it is an unread
 * collapsed item (docs/collapsed-notifications.md), else 1.
 */
export function collapsedCount(item) {
  if (!item || item.is_read || !item.collapse_key) return 1;
  return typeof item.collapsed_count === "number" && item.collapsed_count > 0
    ? item.collapsed_count
    : 1;
}

/**
 * The delay before reconnect attempt number `attempt` (0 for the first): full jitter, a random
 * value from 0 up to min(max, initial * factor ** attempt).
 */
export function backoffDelay(attempt, backoff = DEFAULTS.backoff, random = Math.random) {
  const { initial, max, factor } = { ...DEFAULTS.backoff, ...backoff };
  const cap = Math.min(max, initial * factor ** attempt);
  return Math.floor(random() * cap);
}

/** The payload of a JWT, decoded but NOT verified (only to read "exp"); null when unreadable. */
export function decodeJwtPayload(token) {
  try {
    const part = String(token).split(".")[1];
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === "object" ? payload : null;
  } catch {
    return null;
  }
}

export class NotificationClient extends EventTarget {
  constructor(options = {}) {
    super();
    if (!options.url) throw new TypeError("NotificationClient needs a url.");
    if (typeof options.getToken !== "function") {
      throw new TypeError("NotificationClient needs getToken, a function returning a token.");
    }
    this.options = {
      ...DEFAULTS,
      ...options,
      backoff: { ...DEFAULTS.backoff, ...options.backoff },
    };
    this.WebSocketImpl = options.WebSocketImpl || globalThis.WebSocket;
    this.random = options.random || Math.random;

    this.status = "idle"; // connecting | open | closed
    /** Actions the server answered with unknown_action: it predates them. */
    this.unsupportedActions = new Set();

    this._notifications = new Map(); // id -> item, read or unread
    this._newestId = 0;
    this._hidden = { total: 0, byCategory: {} }; // unread the server counts but we do not hold
    this._unseen = null; // unseen_count from a server with SEEN on, else null
    this._hasMore = true; // more history for loadMore()
    this._page = 0; // last page number loaded (page mode)
    this._cursor = null; // before_id of the next page (cursor mode)
    this._pagination = this.options.pagination; // "auto" settles on "page" or "cursor"

    this._socket = null;
    this._token = null;
    this._generation = 0; // bumped by every connect/close; stale callbacks check it
    this._attempt = 0; // reconnect attempts since the last snapshot
    this._rejectedTokens = 0; // 4001s in a row without a snapshot
    this._stopped = false;
    this._reconnectTimer = null;
    this._refreshTimer = null;
    this._requests = new Map(); // request_id -> {resolve, reject, timer, action}
    this._nextRequestId = 1;
    this._ready = false; // a snapshot arrived on the current socket: requests may go out
    this._snapshots = 0; // snapshots received over the client's life

    if (this.options.autoConnect) {
      // After the caller's synchronous code, so its listeners see the first events.
      queueMicrotask(() => {
        if (this.status === "idle") this.connect();
      });
    }
  }

  // --- public state --------------------------------------------------------------------

  /**
   * A fresh snapshot of what the client holds: every notification by id, the same grouped by
   * category (newest first, by id), unread counts per category and in total, the newest id.
   */
  get state() {
    const byCategory = {};
    const items = [...this._notifications.values()].sort((a, b) => b.id - a.id);
    for (const item of items) (byCategory[item.category] ||= []).push(item);
    const unreadCounts = {};
    for (const [label, hidden] of Object.entries(this._hidden.byCategory)) {
      if (hidden > 0) unreadCounts[label] = hidden;
    }
    let held = 0;
    for (const item of items) {
      if (item.is_read) continue;
      // A collapsed item counts as the notifications it stands for: counts stay exact.
      const count = collapsedCount(item);
      held += count;
      unreadCounts[item.category] = (unreadCounts[item.category] || 0) + count;
    }
    return {
      status: this.status,
      notifications: new Map(this._notifications),
      byCategory,
      unreadCounts,
      unreadTotal: held + this._hidden.total,
      unseenCount: this._unseen,
      newestId: this._newestId || null,
      hasMore: this._hasMore,
    };
  }

  // --- connection ----------------------------------------------------------------------

  /** Open the socket (again). Called by the constructor unless autoConnect is false. */
  async connect({ tokenReason = "connect" } = {}) {
    this._stopped = false;
    clearTimeout(this._reconnectTimer);
    this._dropSocket();
    const generation = ++this._generation;
    this._setStatus("connecting", { attempt: this._attempt });
    let token;
    try {
      token = await this.options.getToken({ reason: tokenReason });
    } catch (error) {
      if (generation !== this._generation) return;
      this._emitError("token_unavailable", `getToken failed: ${error && error.message}`, { error });
      this._scheduleReconnect({ code: null });
      return;
    }
    if (generation !== this._generation) return; // close() or another connect() meanwhile
    if (!token) {
      this._stop("no_token", "getToken returned no token; log in again.");
      return;
    }
    this._token = token;
    const resumeFrom = this._newestId;
    let socket;
    try {
      const protocols = this.options.useSubprotocol ? ["bearer", token] : undefined;
      socket = new this.WebSocketImpl(this._socketUrl(token, resumeFrom), protocols);
    } catch (error) {
      this._emitError("connect_failed", String(error && error.message), { error });
      this._scheduleReconnect({ code: null });
      return;
    }
    this._socket = socket;
    socket.onopen = () => this._setStatus("open");
    socket.onmessage = (event) => this._receive(event.data, resumeFrom);
    socket.onclose = (event) => {
      if (this._socket !== socket) return;
      this._socket = null;
      this._onClose(event.code, event.reason);
    };
    socket.onerror = () => {}; // a close event follows with the code
  }

  /** Close for good (no reconnect); pending requests are rejected. */
  close() {
    this._stopped = true;
    this._generation += 1;
    clearTimeout(this._reconnectTimer);
    this._dropSocket();
    this._setStatus("closed", { code: CloseCode.NORMAL, willReconnect: false });
  }

  _socketUrl(token, resumeFrom) {
    const base = globalThis.location ? globalThis.location.href : undefined;
    const url = new URL(this.options.url, base);
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    if (!this.options.useSubprotocol) url.searchParams.set(this.options.tokenParameter, token);
    if (resumeFrom > 0 && this.options.resume === "query") {
      url.searchParams.set("since", String(resumeFrom));
    }
    return url.toString();
  }

  _dropSocket() {
    clearTimeout(this._refreshTimer);
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      try {
        socket.close(CloseCode.NORMAL);
      } catch {
        // already closed
      }
    }
    this._rejectAll("disconnected", "The socket closed before the reply.");
  }

  _onClose(code, reason) {
    clearTimeout(this._refreshTimer);
    this._rejectAll("disconnected", "The socket closed before the reply.");
    if (this._stopped) return;
    if (code === CloseCode.PERMISSION_DENIED) {
      this._stop("forbidden", "This user may not read any vendor's notifications.", code);
      this.dispatchEvent(new CustomEvent("forbidden", { detail: { code } }));
      return;
    }
    if (code === CloseCode.AUTHENTICATION_FAILED) {
      this._rejectedTokens += 1;
      if (this._rejectedTokens > 1) {
        this._stop("unauthorized", "A fresh token was refused too; log in again.", code);
        return;
      }
      // Ask for a fresh token and reconnect at once: the old one will not work again.
      this._setStatus("closed", { code, reason, willReconnect: true, retryIn: 0 });
      this.connect({ tokenReason: "rejected" });
      return;
    }
    this._scheduleReconnect({ code, reason });
  }

  _scheduleReconnect({ code, reason = "" }) {
    const cap = Math.min(
      this.options.backoff.max,
      this.options.backoff.initial * this.options.backoff.factor ** this._attempt,
    );
    let delay = backoffDelay(this._attempt, this.options.backoff, this.random);
    // Too many requests or sockets: never straight back; wait at least half the cap.
    if (code === CloseCode.TOO_MANY_REQUESTS) delay = Math.floor(cap / 2 + delay / 2);
    if (RESTART_CODES.has(code)) {
      // The process is going away, not failing: reconnect now (to another one), after a
      // random pause no longer than the first back-off step so the clients do not all
      // arrive together.
      delay = backoffDelay(0, this.options.backoff, this.random);
    } else {
      this._attempt += 1;
    }
    this._setStatus("closed", { code, reason, willReconnect: true, retryIn: delay });
    const generation = this._generation;
    this._reconnectTimer = setTimeout(() => {
      if (generation === this._generation && !this._stopped) this.connect();
    }, delay);
  }

  _stop(code, message, closeCode = null) {
    this._stopped = true;
    this._generation += 1;
    this._dropSocket();
    this._setStatus("closed", { code: closeCode, willReconnect: false });
    this._emitError(code, message, { closeCode });
  }

  // --- requests ------------------------------------------------------------------------

  /**
   * Send `{action, ...fields, request_id}` and resolve with the reply that echoes the
   * request_id; reject with a RequestError on an error reply, a close or a timeout.
   */
  request(action, fields = {}, { timeout = this.options.requestTimeout } = {}) {
    const socket = this._socket;
    if (!socket || socket.readyState !== OPEN || !this._ready) {
      return Promise.reject(new RequestError("not_connected", "The socket is not open."));
    }
    const requestId = `c${this._nextRequestId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._requests.delete(requestId);
        reject(new RequestError("timeout", `No reply to ${action} within ${timeout} ms.`));
      }, timeout);
      this._requests.set(requestId, { resolve, reject, timer, action });
      socket.send(JSON.stringify({ ...fields, action, request_id: requestId }));
    });
  }

  _settle(frame) {
    const pending = this._requests.get(frame.request_id);
    if (!pending) return false;
    this._requests.delete(frame.request_id);
    clearTimeout(pending.timer);
    if (frame.action === "error" || frame.status === "error") {
      if (frame.error === "unknown_action") this.unsupportedActions.add(pending.action);
      pending.reject(new RequestError(frame.error || "error", frame.message, frame));
    } else {
      pending.resolve(frame);
    }
    return true;
  }

  _rejectAll(code, message) {
    for (const pending of this._requests.values()) {
      clearTimeout(pending.timer);
      pending.reject(new RequestError(code, message));
    }
    this._requests.clear();
  }

  /** Mark one notification read. Resolves with the server's reply. */
  markRead(id) {
    return this.request("mark_read", { notification_id: id });
  }

  /**
   * Fetch the next page of history (read and unread). Page numbers on servers of today;
   * `before_id` cursors on servers that support them (see the pagination option).
   */
  async loadMore() {
    if (this._pagination !== "page") {
      const before = this._cursor ?? Number.MAX_SAFE_INTEGER;
      try {
        const reply = await this.request("load_more", {
          before_id: before,
          limit: this.options.pageSize,
        });
        this._pagination = "cursor";
        return reply;
      } catch (error) {
        // A server without cursors insists on "page": settle on pages for good.
        if (this._pagination !== "auto" || error.code !== "invalid_field") throw error;
        this._pagination = "page";
      }
    }
    return this.request("load_more", { page: this._page + 1 });
  }

  /**
   * Fetch everything newer than the newest notification held, following has_more until the
   * server says there is nothing more. Resolves with the last reply.
   */
  sync() {
    return this._syncFrom(this._newestId);
  }

  async _syncFrom(sinceId) {
    let since = sinceId;
    for (;;) {
      const reply = await this.request("sync", { since_id: since });
      const items = Array.isArray(reply.notifications) ? reply.notifications : [];
      // Pages are oldest first: the next one starts after this one's newest id.
      const last = items.reduce((max, item) => Math.max(max, item.id), since);
      if (!reply.has_more || last <= since) return reply;
      since = last;
    }
  }

  /**
   * Get a fresh token from getToken({reason: "refresh"}) and hand it to the open socket, so
   * the server does not close it when the old token expires.
   */
  async refreshToken() {
    const token = await this.options.getToken({ reason: "refresh" });
    if (!token) throw new RequestError("no_token", "getToken returned no token.");
    const reply = await this.request("refresh_token", { token });
    this._token = token;
    this._scheduleTokenRefresh();
    return reply;
  }

  /** Mark every notification read, or those of one category. Needs a server with
   * mark_all_read; older servers reject with code "unknown_action". */
  markAllRead(category) {
    return this.request("mark_all_read", category === undefined ? {} : { category });
  }

  /** Needs a server with mark_unread. */
  markUnread(id) {
    return this.request("mark_unread", { notification_id: id });
  }

  /** The server's unread counts. Needs a server with get_unread_counts. */
  getUnreadCounts() {
    return this.request("get_unread_counts");
  }

  /** The user's preference per category ("live", "muted" or "digest"). Needs a server with
   * PREFERENCES on; others reject with code "unknown_action". */
  getPreferences() {
    return this.request("get_preferences");
  }

  /** Change the user's preferences: {label: "live" | "muted" | "digest" | null}, null going
   * back to the category's default. The user's other sockets get a preferences_changed frame
   * (a "frame" event). Needs a server with PREFERENCES on. */
  setPreferences(preferences) {
    return this.request("set_preferences", { preferences });
  }

  /** Mark what the inbox shows as seen: every unread notification up to `upToId` (by default
   * the newest id held). Call it when the inbox opens. The badge is `state.unseenCount`.
   * Needs a server with SEEN on; others reject with code "unknown_action". */
  markSeen(upToId = this._newestId) {
    return this.request("mark_seen", { up_to_id: upToId });
  }

  /** Snooze one notification until `until` (a Date, or ISO 8601 with an offset): it leaves
   * the unread list on every socket of the vendor and comes back, as a "notification" event
   * with source "woke", when it wakes. Needs a server with SNOOZE on. */
  snooze(id, until) {
    const when = until instanceof Date ? until.toISOString() : until;
    return this.request("snooze", { notification_id: id, until: when });
  }

  /** Wake a snoozed notification now. Needs a server with SNOOZE on. */
  unsnooze(id) {
    return this.request("unsnooze", { notification_id: id });
  }

  /** Needs a server with archive. */
  archive(id) {
    return this.request("archive", { notification_id: id });
  }

  /** Needs a server with unarchive. */
  unarchive(id) {
    return this.request("unarchive", { notification_id: id });
  }

  _scheduleTokenRefresh() {
    clearTimeout(this._refreshTimer);
    const { exp, iat } = decodeJwtPayload(this._token) || {};
    if (typeof exp !== "number") return;
    // A short-lived token is refreshed halfway through its life at the latest.
    const lifetime = typeof iat === "number" ? (exp - iat) * 1000 : Infinity;
    const margin = Math.min(this.options.refreshMargin, lifetime / 2);
    const delay = exp * 1000 - Date.now() - margin;
    const generation = this._generation;
    this._refreshTimer = setTimeout(
      () => {
        if (generation !== this._generation) return;
        this.refreshToken().catch((error) => {
          // The server closes with 4001 when the new token is refused; that path reconnects.
          this._emitError("refresh_failed", error.message, { error });
        });
      },
      Math.min(Math.max(delay, 1000), MAX_TIMER),
    );
  }

  // --- frames from the server ----------------------------------------------------------

  _receive(text, resumeFrom) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this._emitError("invalid_frame", "The server sent a frame that is not JSON.");
      return;
    }
    if (!frame || typeof frame !== "object" || Array.isArray(frame)) return;
    this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    const changed = this._apply(frame, resumeFrom);
    // State first, then the promise: a caller awaiting a request sees the updated state.
    const settled = frame.request_id !== undefined && this._settle(frame);
    if (frame.action === "error" && !settled) {
      this._emitError(frame.error, frame.message, { frame });
    }
    if (changed) this._emit("change", { action: frame.action, frame });
  }

  /** Apply one frame to the state; true when something changed. Unknown frames are ignored. */
  _apply(frame, resumeFrom) {
    // A server with SEEN on sends the badge's number beside every unread count.
    if (typeof frame.unseen_count === "number") this._unseen = frame.unseen_count;
    switch (frame.action) {
      case "unread_notifications":
        this._applySnapshot(frame, resumeFrom);
        return true;
      case "new_notification":
        return this._add(frame.notification, "push");
      case "sync":
        return this._applySync(frame);
      case "load_more":
        return this._applyPage(frame);
      case "mark_read":
        return (
          frame.status === "success" &&
          (this._readCollapsed(frame, "local") || this._markRead(frame.notification_id, "local"))
        );
      case "notification_read":
        return this._applyNotificationRead(frame);
      case "mark_all_read":
        return frame.status === "success" && this._applyAllRead(frame.category);
      case "mark_unread":
        return frame.status === "success" && this._markUnread(frame.notification_id);
      case "archive":
        return frame.status === "success" && this._forget(frame.notification_id);
      case "get_unread_counts":
      case "unread_count_changed":
        return this._applyCounts(frame);
      case "mark_seen":
        return frame.status === "success" && this._applySeen(frame);
      case "snooze":
        return frame.status === "success" && this._applySnoozed(frame);
      case "notification_snoozed":
        return this._applySnoozed(frame);
      case "notifications_woke":
        return this._applyWoke(frame);
      default:
        return false;
    }
  }

  _applySnapshot(frame, resumeFrom) {
    const items = Object.values(frame.notifications || {}).flat();
    const first = this._snapshots === 0;
    const previousNewest = this._newestId;
    // The snapshot is the newest unread notifications: a held unread one newer than its
    // oldest (or any, when it is empty) that it lacks was read somewhere else meanwhile.
    const ids = new Set(items.map((item) => item.id));
    const oldest = items.length ? Math.min(...ids) : Infinity;
    // A collapsed item of the snapshot stands for the held unread ones with its key up to it.
    const newestByKey = new Map();
    for (const item of items) {
      const key = item.collapse_key;
      if (key) newestByKey.set(key, Math.max(newestByKey.get(key) ?? 0, item.id));
    }
    for (const item of this._notifications.values()) {
      if (item.is_read || ids.has(item.id)) continue;
      if (item.collapse_key && newestByKey.get(item.collapse_key) > item.id) continue;
      if (items.length === 0 || item.id > oldest) this._markRead(item.id, "snapshot");
    }
    this._hidden = { total: 0, byCategory: {} };
    for (const item of items) {
      const isNew = !this._notifications.has(item.id);
      const stored = this._put(item);
      if (stored && !first && isNew && item.id > previousNewest) {
        this._emitNotification(item, "snapshot");
      }
    }
    this._applyCounts(frame);
    this._snapshots += 1;
    this._ready = true;
    this._attempt = 0;
    this._rejectedTokens = 0;
    this._scheduleTokenRefresh();
    this._emit("snapshot", { notifications: items, frame, reconnect: !first });
    if (this.options.resume === "sync" && resumeFrom > 0) {
      this._syncFrom(resumeFrom).catch((error) => this._emitError(error.code, error.message));
    }
  }

  _applySync(frame) {
    const items = Array.isArray(frame.notifications) ? frame.notifications : [];
    let changed = false;
    for (const item of items) changed = this._add(item, "sync") || changed;
    // The reply to ?since= carries no request_id: follow has_more here. A sync() caller
    // follows its own replies.
    if (frame.request_id === undefined && frame.has_more && items.length) {
      const last = Math.max(...items.map((item) => item.id));
      this._syncFrom(last).catch((error) => this._emitError(error.code, error.message));
    }
    return changed;
  }

  _applyPage(frame) {
    const items = Object.values(frame.notifications || {}).flat();
    for (const item of items) {
      const hidden = !this._notifications.has(item.id) && !item.is_read;
      // An unread one the snapshot left out: it was counted as hidden until now.
      if (this._put(item) && hidden) this._unhide(item.category, collapsedCount(item));
    }
    if (typeof frame.page === "number") this._page = Math.max(this._page, frame.page);
    if (items.length) {
      const oldest = Math.min(...items.map((item) => item.id));
      this._cursor = Math.min(this._cursor ?? Infinity, oldest);
    }
    if (typeof frame.next_before_id === "number") this._cursor = frame.next_before_id;
    this._hasMore = Boolean(frame.has_more);
    this._emit("page", { notifications: items, frame, hasMore: this._hasMore });
    return true;
  }

  _applySeen(frame) {
    const now = new Date().toISOString();
    for (const [id, item] of this._notifications) {
      if (id <= frame.up_to_id && !item.is_read && !item.seen_at) {
        this._notifications.set(id, { ...item, seen_at: now });
      }
    }
    this._applyCounts(frame);
    return true;
  }

  /** A snoozed notification leaves the unread list until it wakes. */
  _applySnoozed(frame) {
    this._forget(frame.notification_id);
    this._applyCounts(frame);
    return true;
  }

  /** Snoozed notifications are back: unread items again, with ids older than the newest. */
  _applyWoke(frame) {
    const items = Array.isArray(frame.notifications) ? frame.notifications : [];
    for (const item of items) this._add(item, "woke");
    this._applyCounts(frame);
    return true;
  }

  _applyNotificationRead(frame) {
    const changed =
      this._readCollapsed(frame, "remote") || this._markRead(frame.notification_id, "remote");
    if (typeof frame.unread_total === "number") this._setHiddenTotal(frame.unread_total);
    return changed || typeof frame.unread_total === "number";
  }

  _applyAllRead(category, source = "local") {
    for (const item of this._notifications.values()) {
      if (category === undefined || category === null || item.category === category) {
        this._markRead(item.id, source);
      }
    }
    if (category === undefined || category === null) {
      this._hidden = { total: 0, byCategory: {} };
    } else {
      this._hidden.total -= this._hidden.byCategory[category] || 0;
      delete this._hidden.byCategory[category];
    }
    return true;
  }

  /** unread_counts / unread_total from a newer server: the truth about what is not held. */
  _applyCounts(frame) {
    let changed = false;
    if (frame.unread_counts && typeof frame.unread_counts === "object") {
      const held = this._heldUnread();
      // The server lists only labels that have unread ones: a held unread one of any other
      // label was read elsewhere (mark_all_read in another tab).
      for (const label of Object.keys(held.byCategory)) {
        if (!(label in frame.unread_counts)) this._applyAllRead(label, "remote");
      }
      const byCategory = {};
      for (const [label, count] of Object.entries(frame.unread_counts)) {
        if (count === 0) this._applyAllRead(label, "remote"); // e.g. read in another tab
        byCategory[label] = Math.max(0, count - (held.byCategory[label] || 0));
      }
      this._hidden.byCategory = byCategory;
      changed = true;
    }
    if (typeof frame.unread_total === "number") {
      if (frame.unread_total === 0) this._applyAllRead(null, "remote");
      this._setHiddenTotal(frame.unread_total);
      changed = true;
    } else if (changed) {
      this._hidden.total = Object.values(this._hidden.byCategory).reduce((a, b) => a + b, 0);
    }
    return changed;
  }

  // --- the notifications held ----------------------------------------------------------

  /** Add or refresh an item; emit "notification" when its id is new. */
  _add(item, source) {
    if (!item || typeof item.id !== "number") return false;
    if (this._notifications.has(item.id)) {
      if (source === "push") return false; // a duplicate push: what we hold is as new
      this._put(item);
      return true;
    }
    if (!this._put(item)) return false;
    this._emitNotification(item, source);
    return true;
  }

  /** Hold `item` (merged into what is held with its id); false when a newer collapsed item
   * held stands for it already. */
  _put(item) {
    if (!item || typeof item.id !== "number") return false;
    const held = this._notifications.get(item.id);
    const wasUnread = held && !held.is_read;
    const merged = held ? { ...held, ...item } : this._fold(item);
    if (item.id > this._newestId) this._newestId = item.id;
    if (merged === null) return false;
    this._notifications.set(item.id, merged);
    if (wasUnread && item.is_read) this._emit("read", { id: item.id, source: "server" });
    return true;
  }

  /**
   * A new unread item with a collapse key takes the place of the held unread item with that
   * key: it carries the group's collapsed_count, or (a sync item, a broadcast) one more than
   * the held one. Null when the held one is newer: it stands for this one already.
   */
  _fold(item) {
    if (item.is_read || !item.collapse_key) return item;
    for (const other of this._notifications.values()) {
      if (other.is_read || other.collapse_key !== item.collapse_key || other.id === item.id) {
        continue;
      }
      if (other.id > item.id) return null;
      this._notifications.delete(other.id);
      if (typeof item.collapsed_count === "number") return item;
      return { ...item, collapsed_count: collapsedCount(other) + 1 };
    }
    return item;
  }

  /**
   * mark_read of a collapsed item (a reply or notification_read with collapse_key): every held
   * unread item with its key up to its id is read; a newer one stands for `updated` fewer.
   */
  _readCollapsed(frame, source) {
    if (!frame.collapse_key) return false;
    let changed = false;
    for (const item of [...this._notifications.values()]) {
      if (item.is_read || item.collapse_key !== frame.collapse_key) continue;
      if (item.id <= frame.notification_id) {
        changed = this._markRead(item.id, source) || changed;
      } else if (typeof frame.updated === "number" && frame.updated > 0) {
        const left = Math.max(1, collapsedCount(item) - frame.updated);
        this._notifications.set(item.id, { ...item, collapsed_count: left });
        changed = true;
      }
    }
    return changed;
  }

  _markRead(id, source) {
    const item = this._notifications.get(id);
    if (!item || item.is_read) return false;
    this._notifications.set(id, { ...item, is_read: true });
    this._emit("read", { id, source, notification: this._notifications.get(id) });
    return true;
  }

  _markUnread(id) {
    const item = this._notifications.get(id);
    if (!item || !item.is_read) return false;
    if (!item.collapse_key) {
      this._notifications.set(id, { ...item, is_read: false, readed_at: null });
      return true;
    }
    // The server makes the one notification unread: as a collapsed item it stands for itself,
    // or folds into (or takes over) the held unread item with its key.
    const { collapsed_count: _stale, ...unread } = item;
    this._notifications.delete(id);
    const folded = this._fold({ ...unread, is_read: false, readed_at: null });
    if (folded === null) {
      for (const other of this._notifications.values()) {
        if (!other.is_read && other.collapse_key === item.collapse_key) {
          const count = collapsedCount(other) + 1;
          this._notifications.set(other.id, { ...other, collapsed_count: count });
        }
      }
    } else {
      this._notifications.set(id, folded);
    }
    return true;
  }

  _forget(id) {
    return this._notifications.delete(id);
  }

  _heldUnread() {
    const counts = { total: 0, byCategory: {} };
    for (const item of this._notifications.values()) {
      if (item.is_read) continue;
      const count = collapsedCount(item);
      counts.total += count;
      counts.byCategory[item.category] = (counts.byCategory[item.category] || 0) + count;
    }
    return counts;
  }

  _setHiddenTotal(serverTotal) {
    this._hidden.total = Math.max(0, serverTotal - this._heldUnread().total);
  }

  _unhide(category, count = 1) {
    this._hidden.total = Math.max(0, this._hidden.total - count);
    if (this._hidden.byCategory[category] > 0) {
      this._hidden.byCategory[category] = Math.max(0, this._hidden.byCategory[category] - count);
    }
  }

  // --- events --------------------------------------------------------------------------

  _setStatus(status, detail = {}) {
    this.status = status;
    if (status !== "open") this._ready = false;
    this._emit("status", { status, ...detail });
  }

  _emitNotification(item, source) {
    this._emit("notification", { notification: this._notifications.get(item.id), source });
  }

  _emitError(code, message, extra = {}) {
    this._emit("error", { code, message, ...extra });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
