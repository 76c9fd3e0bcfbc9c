// Unit tests of the browser client, against a fake WebSocket: `node --test tests/js/`.
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import {
  CloseCode,
  NotificationClient,
  RequestError,
  backoffDelay,
  collapsedCount,
  decodeJwtPayload,
} from "../../django_vendor_notifications/static/django_vendor_notifications/client.js";

// --- a fake WebSocket and helpers --------------------------------------------------------

/** A class per test, so each test sees only its own sockets. */
function fakeWebSocket() {
  return class FakeSocket {
    static sockets = [];

    constructor(url, protocols) {
      this.url = new URL(url);
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      FakeSocket.sockets.push(this);
    }

    static get last() {
      return FakeSocket.sockets.at(-1);
    }

    send(text) {
      assert.equal(this.readyState, 1, "sent on a socket that is not open");
      this.sent.push(JSON.parse(text));
    }

    close(code = 1000) {
      this.readyState = 3;
      this.closedWith = code;
    }

    // The server's side.
    accept() {
      this.readyState = 1;
      this.onopen?.({});
    }

    push(frame) {
      this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
    }

    drop(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }

    /** The last message the client sent with this action. */
    lastSent(action) {
      return this.sent.filter((frame) => frame.action === action).at(-1);
    }
  };
}

const clients = [];
afterEach(() => {
  while (clients.length) clients.pop().close();
});

function makeClient(options = {}) {
  const WebSocketImpl = fakeWebSocket();
  const tokens = [];
  let issued = 0;
  const client = new NotificationClient({
    url: "ws://shop.example/v1/ws/notifications/",
    getToken: async (context) => {
      tokens.push(context.reason);
      issued += 1;
      return `token-${issued}`;
    },
    backoff: { initial: 5, max: 20, factor: 2 },
    requestTimeout: 500,
    WebSocketImpl,
    ...options,
  });
  clients.push(client);
  return { client, WebSocketImpl, tokens };
}

async function until(condition, what = "condition", timeout = 2000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function collect(target, type) {
  const events = [];
  target.addEventListener(type, (event) => events.push(event.detail));
  return events;
}

function item(id, category = "Order Notifications", extra = {}) {
  return {
    id,
    vendor: 7,
    category,
    message: `Notification ${id}`,
    context_data: "{}",
    is_read: false,
    readed_at: null,
    created_at: "12-03-2025 10:15:00",
    ...extra,
  };
}

function grouped(items) {
  const groups = {};
  for (const entry of items) (groups[entry.category] ||= []).push(entry);
  return groups;
}

function snapshot(items) {
  return { action: "unread_notifications", notifications: grouped(items) };
}

/** A client whose socket is open and has received `items` as its snapshot. */
async function connected(items = [], options = {}) {
  const setup = makeClient(options);
  await until(() => setup.WebSocketImpl.last, "a socket");
  const socket = setup.WebSocketImpl.last;
  socket.accept();
  socket.push(snapshot(items));
  return { ...setup, socket };
}

/** Reply to the client's last request with this action, echoing its request_id. */
function reply(socket, action, frame) {
  const request = socket.lastSent(action);
  assert.ok(request, `the client sent no ${action}`);
  socket.push({ action, ...frame, request_id: request.request_id });
}

function jwt(payload) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(payload)}.signature`;
}

// --- backoff -------------------------------------------------------------------------------

describe("backoff", () => {
  test("the cap grows by factor per attempt up to max", () => {
    const almostOne = () => 0.999999;
    const delays = [0, 1, 2, 3, 4, 5].map((attempt) =>
      backoffDelay(attempt, { initial: 100, max: 1000, factor: 3 }, almostOne),
    );
    assert.deepEqual(delays, [99, 299, 899, 999, 999, 999]);
  });

  test("full jitter stays within [0, cap)", () => {
    const backoff = { initial: 50, max: 4000, factor: 2 };
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const cap = Math.min(4000, 50 * 2 ** attempt);
      for (let i = 0; i < 200; i += 1) {
        const delay = backoffDelay(attempt, backoff);
        assert.ok(delay >= 0 && delay < cap, `attempt ${attempt}: ${delay} not in [0, ${cap})`);
      }
      assert.equal(backoffDelay(attempt, backoff, () => 0), 0);
    }
  });

  test("the client waits longer after each failed attempt, and resets after a snapshot", async () => {
    const { client, WebSocketImpl } = makeClient({ random: () => 0.999999 });
    const statuses = collect(client, "status");
    for (let i = 0; i < 4; i += 1) {
      await until(() => WebSocketImpl.sockets.length === i + 1, `socket ${i + 1}`);
      WebSocketImpl.last.drop(CloseCode.ABNORMAL);
    }
    const delays = statuses.filter((s) => s.status === "closed").map((s) => s.retryIn);
    assert.deepEqual(delays, [4, 9, 19, 19]);

    await until(() => WebSocketImpl.sockets.length === 5, "socket 5");
    WebSocketImpl.last.accept();
    WebSocketImpl.last.push(snapshot([]));
    WebSocketImpl.last.drop(1001);
    assert.equal(statuses.at(-1).retryIn, 4, "the first retry after a good session is quick");
  });

  test("4013 backs off; 4029 waits at least half the cap", async () => {
    const { client, WebSocketImpl } = makeClient({ random: () => 0 });
    const statuses = collect(client, "status");
    await until(() => WebSocketImpl.last, "a socket");
    WebSocketImpl.last.accept();
    WebSocketImpl.last.drop(CloseCode.TRY_AGAIN_LATER);
    await until(() => WebSocketImpl.sockets.length === 2, "a reconnect after 4013");
    WebSocketImpl.last.drop(CloseCode.TOO_MANY_REQUESTS);
    const closed = statuses.filter((s) => s.status === "closed");
    assert.deepEqual(
      closed.map((s) => [s.code, s.retryIn, s.willReconnect]),
      [
        [4013, 0, true],
        [4029, 5, true], // cap of attempt 1 is 10: at least 5 even with zero jitter
      ],
    );
    await until(() => WebSocketImpl.sockets.length === 3, "a reconnect after 4029");
  });

  test("4012, 1012 and 1001 (the server is stopping): a short pause, never a grown back-off", async () => {
    const { client, WebSocketImpl } = makeClient({ random: () => 0.999999 });
    const statuses = collect(client, "status");
    // Two failures first: the back-off has grown to its cap of 20.
    for (let i = 0; i < 2; i += 1) {
      await until(() => WebSocketImpl.sockets.length === i + 1, `socket ${i + 1}`);
      WebSocketImpl.last.drop(CloseCode.ABNORMAL);
    }
    const codes = [CloseCode.SERVER_RESTARTING, CloseCode.SERVICE_RESTART, CloseCode.GOING_AWAY];
    for (const [i, code] of codes.entries()) {
      await until(() => WebSocketImpl.sockets.length === i + 3, `socket ${i + 3}`);
      WebSocketImpl.last.accept();
      WebSocketImpl.last.drop(code);
    }
    await until(() => WebSocketImpl.sockets.length === 6, "a reconnect after each");
    WebSocketImpl.last.drop(CloseCode.ABNORMAL);
    const closed = statuses.filter((s) => s.status === "closed");
    assert.deepEqual(
      closed.map((s) => [s.code, s.retryIn]),
      [
        [1006, 4],
        [1006, 9],
        // Jittered within the first step (cap 5), however long the back-off had grown.
        [4012, 4],
        [1012, 4],
        [1001, 4],
        // A restart is not a failure: the back-off goes on from where it was.
        [1006, 19],
      ],
    );
    assert.equal(CloseCode.SERVER_RESTARTING, 4012);
  });
});

// --- close codes ---------------------------------------------------------------------------

describe("close codes", () => {
  test("4001: getToken is asked for a fresh token, then the client reconnects with it", async () => {
    const { client, WebSocketImpl, tokens } = await connected([item(1)]);
    assert.deepEqual(WebSocketImpl.last.protocols, ["bearer", "token-1"]);
    WebSocketImpl.last.drop(CloseCode.AUTHENTICATION_FAILED);
    await until(() => WebSocketImpl.sockets.length === 2, "a reconnect");
    assert.deepEqual(tokens, ["connect", "rejected"]);
    assert.deepEqual(WebSocketImpl.last.protocols, ["bearer", "token-2"]);
    assert.equal(client.status, "connecting");
  });

  test("4001 again with the fresh token: stop and report", async () => {
    const { client, WebSocketImpl } = await connected();
    const errors = collect(client, "error");
    WebSocketImpl.last.drop(CloseCode.AUTHENTICATION_FAILED);
    await until(() => WebSocketImpl.sockets.length === 2, "a reconnect");
    WebSocketImpl.last.accept();
    WebSocketImpl.last.drop(CloseCode.AUTHENTICATION_FAILED);
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(WebSocketImpl.sockets.length, 2);
    assert.equal(errors.at(-1).code, "unauthorized");
    assert.equal(client.status, "closed");
  });

  test("4003: stop, emit error and forbidden, never reconnect", async () => {
    const { client, WebSocketImpl } = makeClient();
    const errors = collect(client, "error");
    const forbidden = collect(client, "forbidden");
    const statuses = collect(client, "status");
    await until(() => WebSocketImpl.last, "a socket");
    WebSocketImpl.last.accept();
    WebSocketImpl.last.drop(CloseCode.PERMISSION_DENIED);
    await new Promise((resolve) => setTimeout(resolve, 80)); // several backoff caps
    assert.equal(WebSocketImpl.sockets.length, 1);
    assert.deepEqual(
      errors.map((e) => [e.code, e.closeCode]),
      [["forbidden", 4003]],
    );
    assert.equal(forbidden.length, 1);
    assert.deepEqual(statuses.at(-1), { status: "closed", code: 4003, willReconnect: false });
  });

  test("a token provider that has no token stops the client", async () => {
    const { client, WebSocketImpl } = makeClient({ getToken: async () => null });
    const errors = collect(client, "error");
    await until(() => errors.length, "an error");
    assert.equal(errors[0].code, "no_token");
    assert.equal(WebSocketImpl.sockets.length, 0);
    assert.equal(client.status, "closed");
  });

  test("close() stops reconnecting and rejects pending requests", async () => {
    const { client, WebSocketImpl } = await connected([item(1)]);
    const pending = client.markRead(1);
    client.close();
    await assert.rejects(pending, { name: "RequestError", code: "disconnected" });
    assert.equal(WebSocketImpl.last.closedWith, 1000);
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(WebSocketImpl.sockets.length, 1);
  });

  test("the token goes in ?token= when the subprotocol is off", async () => {
    const { WebSocketImpl } = makeClient({ useSubprotocol: false, tokenParameter: "jwt" });
    await until(() => WebSocketImpl.last, "a socket");
    assert.equal(WebSocketImpl.last.protocols, undefined);
    assert.equal(WebSocketImpl.last.url.searchParams.get("jwt"), "token-1");
  });

  test("http(s) URLs become ws(s) URLs", async () => {
    const { WebSocketImpl } = makeClient({ url: "https://shop.example/v1/ws/notifications/" });
    await until(() => WebSocketImpl.last, "a socket");
    assert.equal(WebSocketImpl.last.url.protocol, "wss:");
    assert.equal(WebSocketImpl.last.url.searchParams.has("token"), false);
  });
});

// --- resuming and de-duplication -----------------------------------------------------------

describe("resume and de-duplication", () => {
  test("de-duplicates by id across snapshot, push and sync", async () => {
    const { client, socket } = await connected([item(2), item(1, "General Notifications")]);
    const arrivals = collect(client, "notification");
    socket.push({ action: "new_notification", notification: item(2) }); // also in the snapshot
    socket.push({ action: "new_notification", notification: item(3) });
    socket.push({ action: "new_notification", notification: item(3) });
    const synced = client.sync();
    assert.equal(socket.lastSent("sync").since_id, 3);
    reply(socket, "sync", {
      since_id: 3,
      has_more: false,
      notifications: [item(3), item(4, "Payment Notifications")],
    });
    await synced;
    assert.deepEqual(
      arrivals.map((a) => [a.notification.id, a.source]),
      [
        [3, "push"],
        [4, "sync"],
      ],
    );
    const { notifications, byCategory, unreadCounts, unreadTotal, newestId } = client.state;
    assert.deepEqual([...notifications.keys()].sort(), [1, 2, 3, 4]);
    assert.deepEqual(
      byCategory["Order Notifications"].map((n) => n.id),
      [3, 2],
      "newest first",
    );
    assert.deepEqual(unreadCounts, {
      "Order Notifications": 2,
      "General Notifications": 1,
      "Payment Notifications": 1,
    });
    assert.equal(unreadTotal, 4);
    assert.equal(newestId, 4);
  });

  test("reconnects with ?since=<newest id> and follows has_more with sync", async () => {
    const { client, WebSocketImpl, socket } = await connected([item(5), item(4)]);
    assert.equal(socket.url.searchParams.has("since"), false, "nothing to resume from yet");
    socket.push({ action: "new_notification", notification: item(6) });
    socket.drop(CloseCode.ABNORMAL);
    await until(() => WebSocketImpl.sockets.length === 2, "a reconnect");
    const again = WebSocketImpl.last;
    assert.equal(again.url.searchParams.get("since"), "6");
    const arrivals = collect(client, "notification");
    again.accept();
    again.push(snapshot([item(8), item(6), item(5), item(4)]));
    // The server's answer to ?since: no request_id, and more to come.
    again.push({
      action: "sync",
      since_id: 6,
      has_more: true,
      notifications: [item(7, "Order Notifications", { is_read: true }), item(8)],
    });
    await until(() => again.lastSent("sync"), "a follow-up sync");
    assert.equal(again.lastSent("sync").since_id, 8);
    reply(again, "sync", { since_id: 8, has_more: false, notifications: [item(9)] });
    await until(() => arrivals.length === 3, "three arrivals");
    assert.deepEqual(
      arrivals.map((a) => [a.notification.id, a.source]),
      [
        [8, "snapshot"],
        [7, "sync"],
        [9, "sync"],
      ],
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(again.sent.filter((f) => f.action === "sync").length, 1, "stops at has_more false");
    assert.deepEqual([...client.state.notifications.keys()].sort(), [4, 5, 6, 7, 8, 9]);
    assert.equal(client.state.unreadTotal, 5);
  });

  test("resume: 'sync' sends a sync action from the newest id instead of ?since", async () => {
    const { WebSocketImpl, socket } = await connected([item(3)], { resume: "sync" });
    socket.drop(1012);
    await until(() => WebSocketImpl.sockets.length === 2, "a reconnect");
    const again = WebSocketImpl.last;
    assert.equal(again.url.searchParams.has("since"), false);
    again.accept();
    again.push(snapshot([item(4), item(3)]));
    await until(() => again.lastSent("sync"), "a sync");
    assert.equal(again.lastSent("sync").since_id, 3, "from before the new snapshot");
  });

  test("a snapshot after reconnecting marks held notifications read elsewhere as read", async () => {
    const { client, WebSocketImpl, socket } = await connected([item(3), item(2), item(1)]);
    const reads = collect(client, "read");
    socket.drop(CloseCode.ABNORMAL);
    await until(() => WebSocketImpl.sockets.length === 2, "a reconnect");
    WebSocketImpl.last.accept();
    WebSocketImpl.last.push(snapshot([item(3), item(1)]));
    assert.deepEqual(
      reads.map((r) => [r.id, r.source]),
      [[2, "snapshot"]],
    );
    assert.equal(client.state.unreadTotal, 2);
  });

  test("unknown frames and unknown keys are tolerated", async () => {
    const { client, socket } = await connected([item(1, "Order Notifications", { pinned: 1 })]);
    const errors = collect(client, "error");
    const frames = collect(client, "frame");
    socket.push({ action: "something_new", payload: [1, 2] });
    socket.push({ action: "new_notification", notification: item(2), priority: "high" });
    socket.push("[1, 2]");
    socket.push({ no: "action" });
    assert.equal(errors.length, 0);
    assert.equal(frames.length, 3);
    assert.equal(client.state.notifications.get(1).pinned, 1);
    assert.equal(client.state.unreadTotal, 2);
  });
});

// --- requests ------------------------------------------------------------------------------

describe("requests", () => {
  test("replies are matched by request_id, in whatever order they come", async () => {
    const { client, socket } = await connected([item(1), item(2)]);
    const first = client.markRead(1);
    const second = client.markRead(2);
    const [a, b] = socket.sent;
    assert.notEqual(a.request_id, b.request_id);
    assert.deepEqual(
      { ...a, request_id: undefined },
      { action: "mark_read", notification_id: 1, request_id: undefined },
    );
    socket.push({ action: "mark_read", notification_id: 2, status: "success", request_id: b.request_id });
    socket.push({ action: "mark_read", notification_id: 1, status: "success", request_id: a.request_id });
    assert.equal((await first).notification_id, 1);
    assert.equal((await second).notification_id, 2);
    assert.equal(client.state.unreadTotal, 0);
  });

  test("status error and error frames reject the matching request only", async () => {
    const { client, socket } = await connected([item(1)]);
    const errors = collect(client, "error");
    const missing = client.markRead(999);
    const bad = client.request("load_more", { page: 0 });
    socket.push({
      action: "mark_read",
      notification_id: 999,
      status: "error",
      error: "not_found",
      request_id: socket.sent[0].request_id,
    });
    socket.push({
      action: "error",
      error: "invalid_field",
      message: "'page' must be a positive integer.",
      request_id: socket.sent[1].request_id,
    });
    await assert.rejects(missing, (error) => error instanceof RequestError && error.code === "not_found");
    await assert.rejects(bad, { code: "invalid_field", message: "'page' must be a positive integer." });
    assert.equal(errors.length, 0, "errors that reject a request are not also emitted");
    socket.push({ action: "error", error: "rate_limited", message: "Too many messages; slow down." });
    assert.deepEqual(
      errors.map((e) => e.code),
      ["rate_limited"],
    );
  });

  test("a request without a reply times out; a closed socket refuses requests", async () => {
    const { client, socket } = await connected([], { requestTimeout: 30 });
    await assert.rejects(client.sync(), { code: "timeout" });
    socket.drop(CloseCode.ABNORMAL);
    await assert.rejects(client.markRead(1), { code: "not_connected" });
  });

  test("unknown_action marks the action unsupported (an older server)", async () => {
    const { client, socket } = await connected([item(1)]);
    const all = client.markAllRead();
    assert.deepEqual(socket.lastSent("mark_all_read"), {
      action: "mark_all_read",
      request_id: socket.lastSent("mark_all_read").request_id,
    });
    socket.push({
      action: "error",
      error: "unknown_action",
      message: "Unknown action",
      request_id: socket.lastSent("mark_all_read").request_id,
    });
    await assert.rejects(all, { code: "unknown_action" });
    assert.ok(client.unsupportedActions.has("mark_all_read"));
    assert.equal(client.state.unreadTotal, 1);
  });

  test("markAllRead(category) on a server that has it", async () => {
    const { client, socket } = await connected([item(2), item(1, "General Notifications")]);
    const done = client.markAllRead("Order Notifications");
    assert.equal(socket.lastSent("mark_all_read").category, "Order Notifications");
    reply(socket, "mark_all_read", { status: "success", category: "Order Notifications" });
    await done;
    assert.deepEqual(client.state.unreadCounts, { "General Notifications": 1 });
  });

  test("loadMore falls back from before_id to pages on a server without cursors", async () => {
    const { client, socket } = await connected([item(50)]);
    const pages = collect(client, "page");
    const loading = client.loadMore();
    assert.equal(socket.lastSent("load_more").before_id, Number.MAX_SAFE_INTEGER);
    socket.push({
      action: "error",
      error: "invalid_field",
      message: "'page' must be a positive integer.",
      request_id: socket.lastSent("load_more").request_id,
    });
    await until(() => socket.lastSent("load_more").page === 1, "a page request");
    reply(socket, "load_more", {
      page: 1,
      has_more: true,
      notifications: grouped([item(50), item(49, "Order Notifications", { is_read: true })]),
    });
    await loading;
    const next = client.loadMore();
    assert.equal(socket.lastSent("load_more").page, 2, "pages from now on");
    reply(socket, "load_more", { page: 2, has_more: false, notifications: {} });
    await next;
    assert.equal(pages.length, 2);
    assert.equal(client.state.hasMore, false);
    assert.equal(client.state.notifications.get(49).is_read, true);
  });

  test("loadMore pages by before_id on a server with cursors", async () => {
    const { client, socket } = await connected([item(50)], { pageSize: 2 });
    const first = client.loadMore();
    reply(socket, "load_more", {
      before_id: Number.MAX_SAFE_INTEGER,
      has_more: true,
      notifications: grouped([item(50), item(48)]),
    });
    await first;
    client.loadMore().catch(() => {}); // left unanswered: rejected when the test closes it
    assert.deepEqual(
      { ...socket.lastSent("load_more"), request_id: undefined },
      { action: "load_more", before_id: 48, limit: 2, request_id: undefined },
    );
  });
});

// --- pushes, counts and tokens -------------------------------------------------------------

describe("pushes, counts and tokens", () => {
  test("notification_read from another tab marks it read and takes the server's total", async () => {
    const { client, socket } = await connected([item(2), item(1)]);
    const reads = collect(client, "read");
    const changes = collect(client, "change");
    socket.push({ action: "notification_read", notification_id: 2, unread_total: 7 });
    assert.deepEqual(
      reads.map((r) => [r.id, r.source]),
      [[2, "remote"]],
    );
    assert.equal(changes.length, 1);
    assert.equal(client.state.unreadTotal, 7, "1 held + 6 the snapshot left out");
  });

  test("unread_counts from a newer server are used for badges", async () => {
    const { client, socket } = await connected([item(2)]);
    socket.push({
      ...snapshot([item(2)]),
      unread_counts: { "Order Notifications": 150, "General Notifications": 3 },
      unread_total: 153,
    });
    assert.deepEqual(client.state.unreadCounts, {
      "Order Notifications": 150,
      "General Notifications": 3,
    });
    socket.push({
      action: "unread_count_changed",
      unread_counts: { "Order Notifications": 0, "General Notifications": 3 },
      unread_total: 3,
    });
    assert.equal(client.state.notifications.get(2).is_read, true);
    assert.equal(client.state.unreadTotal, 3);
    const counts = client.getUnreadCounts();
    reply(socket, "get_unread_counts", {
      status: "success",
      unread_counts: { "General Notifications": 1 },
      unread_total: 1,
    });
    await counts;
    assert.deepEqual(client.state.unreadCounts, { "General Notifications": 1 });
  });

  test("a label left out of unread_counts has no unread ones: held ones turn read", async () => {
    const general = { ...item(3), category: "General Notifications" };
    const { client, socket } = await connected([item(2), general]);
    socket.push({
      action: "unread_count_changed",
      unread_counts: { "Order Notifications": 1 },
      unread_total: 1,
    });
    assert.equal(client.state.notifications.get(3).is_read, true);
    assert.equal(client.state.notifications.get(2).is_read, false);
    assert.equal(client.state.unreadTotal, 1);
  });

  test("refreshToken before the token expires, with a fresh token from getToken", async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = [jwt({ exp: now + 2, iat: now - 2 }), jwt({ exp: now + 3600, iat: now })];
    const reasons = [];
    const WebSocketImpl = fakeWebSocket();
    const client = new NotificationClient({
      url: "ws://shop.example/ws/",
      getToken: async ({ reason }) => {
        reasons.push(reason);
        return tokens[reasons.length - 1];
      },
      WebSocketImpl,
    });
    clients.push(client);
    await until(() => WebSocketImpl.last, "a socket");
    WebSocketImpl.last.accept();
    WebSocketImpl.last.push(snapshot([]));
    // Lifetime 4 s: refreshed at the latest halfway, i.e. about now (1 s minimum).
    await until(() => WebSocketImpl.last.lastSent("refresh_token"), "refresh_token", 3000);
    assert.deepEqual(reasons, ["connect", "refresh"]);
    assert.equal(WebSocketImpl.last.lastSent("refresh_token").token, tokens[1]);
  });

  test("decodeJwtPayload reads base64url payloads and returns null for anything else", () => {
    assert.deepEqual(decodeJwtPayload(jwt({ exp: 1, name: "Zoë ~~>?" })), { exp: 1, name: "Zoë ~~>?" });
    assert.equal(decodeJwtPayload("not a token"), null);
    assert.equal(decodeJwtPayload(undefined), null);
  });
});

// --- seen and snoozed (SEEN, SNOOZE on) ----------------------------------------------------

describe("seen and snoozed", () => {
  const ORDERS = "Order Notifications";

  test("unseenCount follows every frame that carries unseen_count; null without SEEN", async () => {
    const { client, socket } = await connected([item(2), item(3)]);
    assert.equal(client.state.unseenCount, null);
    socket.push({ ...snapshot([item(2), item(3)]), unread_counts: { [ORDERS]: 2 }, unread_total: 2, unseen_count: 2 });
    assert.equal(client.state.unseenCount, 2);
    socket.push({ action: "notification_read", notification_id: 2, unread_total: 1, unseen_count: 1 });
    assert.equal(client.state.unseenCount, 1);
  });

  test("markSeen sends the newest id held and marks what it showed seen", async () => {
    const { client, socket } = await connected([item(2), item(3)]);
    const seen = client.markSeen();
    assert.equal(socket.lastSent("mark_seen").up_to_id, 3);
    reply(socket, "mark_seen", {
      status: "success",
      up_to_id: 3,
      updated: 2,
      unread_counts: { [ORDERS]: 2 },
      unread_total: 2,
      unseen_count: 0,
    });
    await seen;
    assert.equal(client.state.unseenCount, 0);
    assert.equal(client.state.unreadTotal, 2, "seen is not read");
    assert.ok(client.state.notifications.get(2).seen_at);
    // Another socket's mark_seen reaches this one as counts.
    socket.push({ action: "unread_count_changed", unread_counts: { [ORDERS]: 2 }, unread_total: 2, unseen_count: 0 });
    assert.equal(client.state.unseenCount, 0);
  });

  test("a snoozed notification leaves the list, and comes back once when it wakes", async () => {
    const { client, socket } = await connected([item(2), item(3)]);
    const notifications = collect(client, "notification");
    const until = new Date(Date.now() + 60_000);
    const snoozed = client.snooze(2, until);
    assert.equal(socket.lastSent("snooze").until, until.toISOString());
    reply(socket, "snooze", {
      notification_id: 2,
      status: "success",
      snoozed_until: until.toISOString(),
      unread_counts: { [ORDERS]: 1 },
      unread_total: 1,
    });
    await snoozed;
    assert.equal(client.state.notifications.has(2), false);
    assert.equal(client.state.unreadTotal, 1);

    socket.push({
      action: "notification_snoozed",
      notification_id: 3,
      snoozed_until: until.toISOString(),
      unread_counts: {},
      unread_total: 0,
    });
    assert.equal(client.state.notifications.size, 0);
    assert.equal(client.state.unreadTotal, 0);

    const woke = {
      action: "notifications_woke",
      notifications: [item(2, ORDERS, { snoozed_until: null })],
      unread_counts: { [ORDERS]: 1 },
      unread_total: 1,
    };
    socket.push(woke);
    socket.push(woke);
    assert.deepEqual(notifications.map((n) => [n.notification.id, n.source]), [[2, "woke"]]);
    assert.equal(client.state.notifications.get(2).is_read, false);
    assert.equal(client.state.unreadTotal, 1);
    assert.equal(client.state.newestId, 3, "a woken id is older than the newest");
  });

  test("unsnooze asks for it; the notification comes in notifications_woke", async () => {
    const { client, socket } = await connected([]);
    const done = client.unsnooze(9);
    assert.deepEqual(socket.lastSent("unsnooze").notification_id, 9);
    reply(socket, "unsnooze", { notification_id: 9, status: "success" });
    assert.equal((await done).status, "success");
  });
});

describe("collapsed notifications", () => {
  const KEY = "new-order";
  const keyed = (id, count, extra = {}) =>
    item(id, "Order Notifications", { collapse_key: KEY, collapsed_count: count, ...extra });
  const heldIds = (client) => [...client.state.notifications.keys()].sort((a, b) => a - b);

  test("a push with a key replaces the held item with that key and takes its count", async () => {
    const { client, socket } = await connected([keyed(1, 1), item(2, "General Notifications")]);
    const notifications = collect(client, "notification");
    for (const [id, count] of [[3, 2], [4, 3]]) {
      socket.push({ action: "new_notification", notification: keyed(id, count) });
    }
    assert.deepEqual(heldIds(client), [2, 4]);
    assert.equal(collapsedCount(client.state.notifications.get(4)), 3);
    assert.deepEqual(notifications.map((event) => event.notification.id), [3, 4]);
    // Counts count notifications, not items.
    assert.equal(client.state.unreadTotal, 4);
    assert.deepEqual(client.state.unreadCounts, {
      "General Notifications": 1,
      "Order Notifications": 3,
    });
    // A duplicate or an older one is already accounted for.
    socket.push({ action: "new_notification", notification: keyed(3, 2) });
    assert.deepEqual(heldIds(client), [2, 4]);
  });

  test("an item with a key but no count (sync, a broadcast) counts one more", async () => {
    const { client, socket } = await connected([keyed(5, 2)]);
    const synced = item(6, "Order Notifications", { collapse_key: KEY });
    socket.push({ action: "sync", since_id: 5, notifications: [synced], has_more: false });
    assert.deepEqual(heldIds(client), [6]);
    assert.equal(client.state.notifications.get(6).collapsed_count, 3);
    assert.equal(client.state.unreadTotal, 3);
  });

  test("collapsedCount is 1 for items without a key and for read ones", () => {
    assert.equal(collapsedCount(item(1)), 1);
    assert.equal(collapsedCount(keyed(1, 5, { is_read: true })), 1);
    assert.equal(collapsedCount(keyed(1, 5)), 5);
  });

  test("a snapshot's collapsed item stands for the held ones with its key", async () => {
    const { client, socket } = await connected([keyed(1, 1)]);
    const reads = collect(client, "read");
    socket.push({ ...snapshot([keyed(3, 3)]), unread_total: 3 });
    assert.deepEqual(heldIds(client), [3]);
    assert.deepEqual(reads, []);
    assert.equal(client.state.unreadTotal, 3);
  });

  test("notification_read of a collapsed item reads it; a newer one stands for fewer", async () => {
    const { client, socket } = await connected([keyed(9, 4)]);
    socket.push({
      action: "notification_read",
      notification_id: 9,
      unread_total: 0,
      collapse_key: KEY,
      updated: 4,
    });
    assert.equal(client.state.notifications.get(9).is_read, true);
    assert.equal(client.state.unreadTotal, 0);

    socket.push({ action: "new_notification", notification: keyed(10, 1) });
    socket.push({ action: "new_notification", notification: keyed(11, 2) });
    // Another tab read id 10 (it had not seen 11): 11 now stands for itself only.
    socket.push({
      action: "notification_read",
      notification_id: 10,
      unread_total: 1,
      collapse_key: KEY,
      updated: 1,
    });
    assert.equal(collapsedCount(client.state.notifications.get(11)), 1);
    assert.equal(client.state.unreadTotal, 1);
  });

  test("markRead of a collapsed item: the reply's count reaches the badge", async () => {
    const { client, socket } = await connected([keyed(7, 12), item(8)]);
    assert.equal(client.state.unreadTotal, 13);
    const done = client.markRead(7);
    await until(() => socket.lastSent("mark_read"), "mark_read");
    reply(socket, "mark_read", {
      notification_id: 7,
      status: "success",
      collapse_key: KEY,
      updated: 12,
    });
    await done;
    assert.equal(client.state.unreadTotal, 1);
  });

  test("markUnread of a read collapsed item counts it once more", async () => {
    const { client, socket } = await connected([keyed(20, 2, { is_read: true }), keyed(21, 1)]);
    const done = client.markUnread(20);
    await until(() => socket.lastSent("mark_unread"), "mark_unread");
    reply(socket, "mark_unread", { notification_id: 20, status: "success" });
    await done;
    // The newer unread item with the key stands for it now.
    assert.deepEqual(heldIds(client), [21]);
    assert.equal(collapsedCount(client.state.notifications.get(21)), 2);
    assert.equal(client.state.unreadTotal, 2);
  });
});
