// Type declarations for client.js, the browser client of the vendor notification socket.
// See docs/client.md for behaviour and docs/protocol.md for every frame.
//
// Members marked "Needs a server that supports it" send actions that are planned but not in
// every server version; an older server rejects them with RequestError code "unknown_action".

// --- the wire --------------------------------------------------------------------------------

/** One notification as the server sends it. Unknown extra keys are kept. */
export interface NotificationItem {
  id: number;
  vendor: number | string;
  category: string;
  message: string;
  /** A JSON-encoded object, "{}" when empty: decode with JSON.parse. */
  context_data: string;
  is_read: boolean;
  /** Spelling kept from the spec. `dd-mm-YYYY HH:MM:SS` in the server's TIME_ZONE, or null. */
  readed_at: string | null;
  /** `dd-mm-YYYY HH:MM:SS` in the server's TIME_ZONE. */
  created_at: string;
  /** ISO 8601 with the offset; only when the server sets ISO_TIMESTAMPS. */
  created_at_iso?: string;
  /** ISO 8601 with the offset, or null; only when the server sets ISO_TIMESTAMPS. */
  readed_at_iso?: string | null;
  /** ISO 8601 with the offset, or null: when an inbox that showed it was opened (SEEN on). */
  seen_at?: string | null;
  /** ISO 8601 with the offset, or null when not snoozed (SNOOZE on). */
  snoozed_until?: string | null;
  /** Only on a notification sent with a collapse key: the vendor's unread ones with the same
   * key are one item, the newest. See docs/collapsed-notifications.md. */
  collapse_key?: string;
  /** On an unread collapsed item: how many unread notifications it stands for, itself
   * included. Read it with collapsedCount(item), which is 1 for any other item. */
  collapsed_count?: number;
  [key: string]: unknown;
}

/** What a change of a collapsed item adds to mark_read, archive and notification_read. */
export interface CollapsedChange {
  /** The collapsed item's key. */
  collapse_key?: string;
  /** How many notifications the change applied to. */
  updated?: number;
}

/** Items keyed by category label, newest first within each list. */
export type GroupedNotifications = Record<string, NotificationItem[]>;

/** Keys every frame may carry: later servers add keys, and replies echo request_id. */
interface FrameBase {
  request_id?: string | number;
  [key: string]: unknown;
}

export interface UnreadNotificationsFrame extends FrameBase {
  action: "unread_notifications";
  notifications: GroupedNotifications;
  /** Unread per category label, over all unread (not archived) notifications. Needs a
   * server that supports it (unread counts). */
  unread_counts?: Record<string, number>;
  /** Needs a server that supports it (unread counts). */
  unread_total?: number;
}

export interface NewNotificationFrame extends FrameBase {
  action: "new_notification";
  notification: NotificationItem;
}

/** Pushed to a vendor's other sockets when one of them marks a notification read. */
export interface NotificationReadFrame extends FrameBase, CollapsedChange {
  action: "notification_read";
  notification_id: number;
  unread_total: number;
}

/** Reply to `sync` and to `?since=` on the URL (that one without request_id). Oldest first. */
export interface SyncFrame extends FrameBase {
  action: "sync";
  since_id: number;
  notifications: NotificationItem[];
  has_more: boolean;
}

export interface LoadMoreFrame extends FrameBase {
  action: "load_more";
  /** Present in page-numbered replies. */
  page?: number;
  /** Present in cursor replies (null for the first page). Needs a server that supports it
   * (cursor pagination). */
  before_id?: number | null;
  /** The next page's before_id, null on the last page. Needs a server that supports it
   * (cursor pagination). */
  next_before_id?: number | null;
  has_more: boolean;
  /** Grouped by category in page-numbered replies; a flat list, newest (highest id) first, in
   * cursor replies. */
  notifications: GroupedNotifications | NotificationItem[];
}

export interface StatusReplyFrame<A extends string> extends FrameBase {
  action: A;
  status: "success" | "error";
  /** With status "error": e.g. "not_found". */
  error?: string;
}

export interface MarkReadFrame extends StatusReplyFrame<"mark_read">, CollapsedChange {
  notification_id: number;
}

export interface RefreshTokenFrame extends StatusReplyFrame<"refresh_token"> {
  /** The new token's "exp" (seconds since the epoch). */
  expires_at?: number | null;
}

/** Needs a server that supports it (mark_all_read). */
export interface MarkAllReadFrame extends StatusReplyFrame<"mark_all_read"> {
  category?: string;
  /** How many notifications this request made read. */
  updated?: number;
  /** The vendor's unread count afterwards. */
  unread_total?: number;
}

/** Needs a server that supports it (mark_unread). */
export interface MarkUnreadFrame extends StatusReplyFrame<"mark_unread"> {
  notification_id: number;
}

/** Needs a server that supports it (archive). */
export interface ArchiveFrame
  extends StatusReplyFrame<"archive" | "unarchive">,
    CollapsedChange {
  notification_id: number;
}

/** Needs a server that supports it (unread counts). */
export interface UnreadCountsFrame extends FrameBase {
  action: "get_unread_counts";
  status?: "success";
  unread_counts: Record<string, number>;
  unread_total: number;
}

/** Pushed after mark_all_read / mark_unread / archive / unarchive on another socket. Needs a
 * server that supports it; the client applies whichever of these keys it carries. */
export interface UnreadCountChangedFrame extends FrameBase {
  action: "unread_count_changed";
  unread_counts?: Record<string, number>;
  unread_total?: number;
  /** The unread ones not seen yet (SEEN on). */
  unseen_count?: number;
}

/** The reply to mark_seen. Needs a server with SEEN on. */
export interface MarkSeenFrame extends StatusReplyFrame<"mark_seen"> {
  up_to_id: number;
  /** How many notifications this request marked seen. */
  updated: number;
  unread_counts: Record<string, number>;
  unread_total: number;
  unseen_count: number;
}

/** The reply to snooze. Needs a server with SNOOZE on. */
export interface SnoozeFrame extends StatusReplyFrame<"snooze"> {
  notification_id: number;
  snoozed_until?: string;
  unread_counts?: Record<string, number>;
  unread_total?: number;
  unseen_count?: number;
}

/** The reply to unsnooze (the notification itself comes in notifications_woke). */
export interface UnsnoozeFrame extends StatusReplyFrame<"unsnooze"> {
  notification_id: number;
}

/** Pushed to the vendor's other sockets: the notification leaves the unread list until then. */
export interface NotificationSnoozedFrame extends FrameBase {
  action: "notification_snoozed";
  notification_id: number;
  snoozed_until: string;
  unread_counts: Record<string, number>;
  unread_total: number;
  unseen_count?: number;
}

/** Pushed to every socket of the vendor, once, when snoozed notifications wake. */
export interface NotificationsWokeFrame extends FrameBase {
  action: "notifications_woke";
  /** Oldest first; their ids are older than the newest. */
  notifications: NotificationItem[];
  unread_counts: Record<string, number>;
  unread_total: number;
  unseen_count?: number;
}

/** How a category reaches the user's sockets: pushed live, or only stored and counted. */
export type Delivery = "live" | "muted" | "digest";

/** The reply to get_preferences / set_preferences. Needs a server with PREFERENCES on. */
export interface PreferencesFrame extends FrameBase {
  action: "get_preferences" | "set_preferences";
  status: "success";
  /** Every category with a preference; any other is "live". */
  preferences: Record<string, Delivery>;
  unmutable_categories: string[];
}

/** Pushed to the user's other sockets when the user changed their preferences. */
export interface PreferencesChangedFrame extends FrameBase {
  action: "preferences_changed";
  preferences: Record<string, Delivery>;
}

export interface ErrorFrame extends FrameBase {
  action: "error";
  /** invalid_json, invalid_message, binary_not_supported, unknown_action, invalid_field,
   * not_found, cannot_mute, message_too_large, rate_limited, internal_error, unavailable, or a later one. */
  error: string;
  message: string;
}

/** Any frame the server may send. Frames with other actions are ignored (but still emitted
 * as a "frame" event). */
export type ServerFrame =
  | UnreadNotificationsFrame
  | NewNotificationFrame
  | NotificationReadFrame
  | SyncFrame
  | LoadMoreFrame
  | MarkReadFrame
  | RefreshTokenFrame
  | MarkAllReadFrame
  | MarkUnreadFrame
  | ArchiveFrame
  | UnreadCountsFrame
  | UnreadCountChangedFrame
  | PreferencesFrame
  | PreferencesChangedFrame
  | MarkSeenFrame
  | SnoozeFrame
  | UnsnoozeFrame
  | NotificationSnoozedFrame
  | NotificationsWokeFrame
  | ErrorFrame;

/** Frames the client sends (each also carries a request_id it generates). */
export type ClientFrame =
  | { action: "mark_read"; notification_id: number }
  | { action: "load_more"; page: number }
  | {
      action: "load_more";
      before_id: number | null;
      limit?: number;
      category?: string;
      is_read?: boolean;
      archived?: boolean;
    } // needs a server with cursors
  | { action: "sync"; since_id: number }
  | { action: "refresh_token"; token: string }
  | { action: "mark_all_read"; category?: string } // needs a server with mark_all_read
  | { action: "mark_unread"; notification_id: number } // needs a server with mark_unread
  | { action: "get_unread_counts" } // needs a server with unread counts
  | { action: "get_preferences" } // needs a server with PREFERENCES on
  | { action: "set_preferences"; preferences: Record<string, Delivery | null> }
  | { action: "mark_seen"; up_to_id: number } // needs a server with SEEN on
  | { action: "snooze"; notification_id: number; until: string } // needs SNOOZE on
  | { action: "unsnooze"; notification_id: number } // needs SNOOZE on
  | { action: "archive"; notification_id: number } // needs a server with archive
  | { action: "unarchive"; notification_id: number }; // needs a server with archive

// --- the client ------------------------------------------------------------------------------

export declare const CloseCode: Readonly<{
  NORMAL: 1000;
  ABNORMAL: 1006;
  GOING_AWAY: 1001;
  SERVICE_RESTART: 1012;
  AUTHENTICATION_FAILED: 4001;
  PERMISSION_DENIED: 4003;
  SERVER_RESTARTING: 4012;
  TRY_AGAIN_LATER: 4013;
  TOO_MANY_REQUESTS: 4029;
}>;

export interface BackoffOptions {
  /** Cap of the first delay in ms. Default 500. */
  initial?: number;
  /** Largest cap in ms. Default 30000. */
  max?: number;
  /** The cap grows by this factor per failed attempt. Default 2. */
  factor?: number;
}

/** Why getToken is called: the first connect or a reconnect, a token the server refused
 * with 4001 (return a fresh one), or a refresh before the current one expires. */
export type TokenReason = "connect" | "rejected" | "refresh";

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface NotificationClientOptions {
  /** ws://, wss://, http(s):// or a path resolved against the page ("/v1/ws/notifications/"). */
  url: string;
  /** Returns an access token; null/undefined/"" stops the client ("log in again"). */
  getToken: (context: { reason: TokenReason }) => string | null | undefined | Promise<string | null | undefined>;
  /** Send the token as the subprotocol pair ["bearer", token] (default) or in ?token=. */
  useSubprotocol?: boolean;
  /** The query parameter when useSubprotocol is false. Default "token". */
  tokenParameter?: string;
  backoff?: BackoffOptions;
  /** ms before a request without a reply is rejected with code "timeout". Default 10000. */
  requestTimeout?: number;
  /** ms before the token's "exp" to send refresh_token (at most half its lifetime). Default 60000. */
  refreshMargin?: number;
  /** How to catch up after a reconnect: "query" (?since=, default), "sync" (a sync action after
   * the snapshot) or "none". */
  resume?: "query" | "sync" | "none";
  /** "auto" (default) tries before_id cursors once and falls back to page numbers on a server
   * without them; "page" or "cursor" (needs a server that supports it) fix the choice. */
  pagination?: "auto" | "page" | "cursor";
  /** `limit` of cursor pages. Default 20. */
  pageSize?: number;
  /** Connect right after construction (in a microtask). Default true. */
  autoConnect?: boolean;
  /** The WebSocket class; defaults to globalThis.WebSocket. */
  WebSocketImpl?: WebSocketConstructor;
  /** Random numbers in [0, 1) for the jitter; defaults to Math.random. */
  random?: () => number;
}

export type ConnectionStatus = "idle" | "connecting" | "open" | "closed";

export interface ClientState {
  status: ConnectionStatus;
  /** Every notification held (unread ones from snapshots, pushes and syncs; pages' history). */
  notifications: Map<number, NotificationItem>;
  /** The same grouped by category label, newest (highest id) first. */
  byCategory: Record<string, NotificationItem[]>;
  /** Unread per category: the ones held, plus what a server with counts says is not held. */
  unreadCounts: Record<string, number>;
  unreadTotal: number;
  /** The unread ones not seen yet, from a server with SEEN on; null from any other. */
  unseenCount: number | null;
  /** The newest id held (what a reconnect resumes from), or null. */
  newestId: number | null;
  /** Whether loadMore() may find more history. */
  hasMore: boolean;
}

export interface StatusEventDetail {
  status: ConnectionStatus;
  /** With "connecting": reconnect attempts since the last snapshot. */
  attempt?: number;
  /** With "closed": the close code (null when no socket was made). */
  code?: number | null;
  reason?: string;
  /** With "closed": false once the client has stopped (4003, a refused fresh token, close()). */
  willReconnect?: boolean;
  /** With "closed" and willReconnect: ms until the next attempt. */
  retryIn?: number;
}

export interface ErrorEventDetail {
  /** A protocol error code from an error frame without a matching request, or one of the
   * client's: forbidden, unauthorized, no_token, token_unavailable, connect_failed,
   * refresh_failed, invalid_frame. */
  code: string;
  message: string;
  closeCode?: number | null;
  frame?: ErrorFrame;
  error?: unknown;
}

export interface NotificationClientEventMap {
  /** The unread snapshot on every (re)connect, applied to the state. */
  snapshot: CustomEvent<{ notifications: NotificationItem[]; frame: UnreadNotificationsFrame; reconnect: boolean }>;
  /** A notification the client did not hold before: live ("push"), caught up after a
   * reconnect ("sync", which may include read ones) or newer in a reconnect's snapshot. */
  notification: CustomEvent<{ notification: NotificationItem; source: "push" | "sync" | "snapshot" | "woke" }>;
  /** A held notification became read: by this client ("local"), another socket ("remote"),
   * a reconnect's snapshot ("snapshot") or a fresher copy from the server ("server"). */
  read: CustomEvent<{ id: number; source: "local" | "remote" | "snapshot" | "server"; notification?: NotificationItem }>;
  /** A load_more page was applied. */
  page: CustomEvent<{ notifications: NotificationItem[]; frame: LoadMoreFrame; hasMore: boolean }>;
  /** The state changed (after any frame that changed it); read client.state. */
  change: CustomEvent<{ action: string; frame: ServerFrame }>;
  status: CustomEvent<StatusEventDetail>;
  error: CustomEvent<ErrorEventDetail>;
  /** Close code 4003: the client has stopped. */
  forbidden: CustomEvent<{ code: 4003 }>;
  /** Every parsed frame, known or not, before it is applied. */
  frame: CustomEvent<ServerFrame | FrameBase>;
}

/** A refused or unanswered request. `code` is the server's error code (not_found,
 * invalid_field, unknown_action, ...) or the client's: timeout, not_connected, disconnected,
 * no_token. */
export declare class RequestError extends Error {
  constructor(code: string, message?: string, frame?: ServerFrame | null);
  readonly name: "RequestError";
  readonly code: string;
  readonly frame: ServerFrame | null;
}

export declare class NotificationClient extends EventTarget {
  constructor(options: NotificationClientOptions);

  readonly options: Required<Omit<NotificationClientOptions, "WebSocketImpl" | "random">> & {
    backoff: Required<BackoffOptions>;
  };
  readonly status: ConnectionStatus;
  /** Actions this server answered with unknown_action. */
  readonly unsupportedActions: Set<string>;
  /** A fresh copy on every read. */
  readonly state: ClientState;

  /** Open the socket (again); called by the constructor unless autoConnect is false. */
  connect(options?: { tokenReason?: TokenReason }): Promise<void>;
  /** Close for good: no reconnect; pending requests are rejected with "disconnected". */
  close(): void;

  /** Send any action with a request_id; resolves with the reply that echoes it. */
  request<R extends ServerFrame = ServerFrame>(
    action: string,
    fields?: Record<string, unknown>,
    options?: { timeout?: number },
  ): Promise<R>;

  markRead(id: number): Promise<MarkReadFrame>;
  /** The next page of history: page numbers, or before_id cursors on a server with them. */
  loadMore(): Promise<LoadMoreFrame>;
  /** Everything newer than the newest id held, following has_more; the last reply. */
  sync(): Promise<SyncFrame>;
  /** Hand a fresh token (getToken({reason: "refresh"})) to the open socket. Called by itself
   * before the token's "exp" when the token is a readable JWT. */
  refreshToken(): Promise<RefreshTokenFrame>;

  /** Needs a server that supports it (mark_all_read). */
  markAllRead(category?: string): Promise<MarkAllReadFrame>;
  /** Needs a server that supports it (mark_unread). */
  markUnread(id: number): Promise<MarkUnreadFrame>;
  /** Needs a server that supports it (unread counts). */
  getUnreadCounts(): Promise<UnreadCountsFrame>;
  /** Needs a server with PREFERENCES on. */
  getPreferences(): Promise<PreferencesFrame>;
  /** null goes back to a category's default. Needs a server with PREFERENCES on. */
  setPreferences(preferences: Record<string, Delivery | null>): Promise<PreferencesFrame>;
  /** Mark every unread one up to upToId (default: the newest held) seen. Needs SEEN on. */
  markSeen(upToId?: number): Promise<MarkSeenFrame>;
  /** Snooze one until a time (a Date, or ISO 8601 with an offset). Needs SNOOZE on. */
  snooze(id: number, until: Date | string): Promise<SnoozeFrame>;
  /** Wake a snoozed one now. Needs SNOOZE on. */
  unsnooze(id: number): Promise<UnsnoozeFrame>;
  /** Needs a server that supports it (archive). */
  archive(id: number): Promise<ArchiveFrame>;
  /** Needs a server that supports it (archive). */
  unarchive(id: number): Promise<ArchiveFrame>;

  addEventListener<K extends keyof NotificationClientEventMap>(
    type: K,
    listener: (event: NotificationClientEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof NotificationClientEventMap>(
    type: K,
    listener: (event: NotificationClientEventMap[K]) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

/** Full jitter: a random delay in [0, min(max, initial * factor ** attempt)). */
export declare function backoffDelay(
  attempt: number,
  backoff?: BackoffOptions,
  random?: () => number,
): number;

/** The JWT's payload, decoded WITHOUT verifying the signature; null when unreadable. */
/** How many unread notifications `item` stands for: its collapsed_count when it is an unread
 * collapsed item, else 1. */
export declare function collapsedCount(item: NotificationItem): number;

export declare function decodeJwtPayload(token: string): Record<string, unknown> | null;
