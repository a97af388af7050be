// GENERATED from crates/portrait-core/src/ws.rs by its unit test `ws::typescript`.
// Do not edit: change the Rust types, then run
//   PORTRAIT_BLESS=1 cargo test -p portrait-core ws::
// The WebSocket protocol of /v1/ws (docs/client-api.md).

export type ProfileItem = { 
/**
 * Tag name.
 */
Tag: string, 
/**
 * Value: string or number.
 */
Value: string | number, };

export type ChangeKind = "import" | "set" | "delete";

export type ProfileEvent = { 
/**
 * Whose profile changed.
 */
account: string, 
/**
 * The change's version (per app, strictly increasing).
 */
version: number, 
/**
 * What the change was.
 */
kind: ChangeKind, 
/**
 * Who made it: the account's own UserID when its user changed it, otherwise
 * [`crate::wire::ADMIN_OPERATOR`] (an app admin, the app's backend or Portrait itself).
 */
operator: string, 
/**
 * When (Unix milliseconds).
 */
time_ms: number, 
/**
 * The items this change wrote, user-readable tags only (none for a delete).
 */
items: Array<ProfileItem>, 
/**
 * Every change of every subscribed account up to it has been sent on this connection:
 * reconnect with `since=<cursor>` to receive exactly what was missed.
 */
cursor: number, };

export type OpName = "subscribe" | "unsubscribe" | "ping";

export type ServerFrame = { "type": "ready", 
/**
 * The signed-in user.
 */
user: string, 
/**
 * The app's latest version (head of its change log) at connect.
 */
version: number, 
/**
 * Subscriptions allowed per connection, the own account included.
 */
max_subscriptions: number, } | { "type": "profile" } & ProfileEvent | { "type": "synced", 
/**
 * Every change of every subscribed account up to it has been sent.
 */
cursor: number, } | { "type": "subscribed", 
/**
 * The accounts newly subscribed.
 */
accounts: Array<string>, 
/**
 * Subscriptions now held.
 */
count: number, } | { "type": "unsubscribed", 
/**
 * The accounts no longer subscribed.
 */
accounts: Array<string>, 
/**
 * Subscriptions now held.
 */
count: number, } | { "type": "pong" } | { "type": "error", 
/**
 * An [`ErrorCode`] (kept a bare number so that `match` arms can name it).
 */
code: number, 
/**
 * Why, in English.
 */
message: string, 
/**
 * The op it answers ([`OpName::as_str`]); absent when it answers none.
 */
op?: OpName, };

export type ClientOp = { "op": "subscribe", 
/**
 * UserIDs to add.
 */
accounts: Array<string>, 
/**
 * The cursor to catch the new accounts up from.
 */
since?: number, } | { "op": "unsubscribe", 
/**
 * UserIDs to remove.
 */
accounts: Array<string>, } | { "op": "ping" };

/** Close codes the server uses. */
export const CloseCode = {
  IDLE: 4000,
  AUTH: 4001,
  REVOKED: 4002,
  TOO_MANY_CONNECTIONS: 4003,
  EXPIRED: 4004,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
} as const;

/** Error codes of `error` frames particular to the WebSocket. */
export const WsErrorCode = {
  TOO_MANY_SUBSCRIPTIONS: 49002,
  TOO_MANY_CONNECTIONS: 49003,
  BAD_FRAME: 49004,
  CHANGES_PRUNED: 49005,
  RATE_LIMITED: 60007,
  SIG_EXPIRED: 70001,
  ACCOUNT_NOT_FOUND: 70107,
  INTERNAL: 40006,
} as const;
