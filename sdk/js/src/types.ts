/**
 * The session's public data types: profiles as cached and as announced, the options, and the
 * shapes of the WebSocket and fetch implementations it accepts. Types only, so that every module
 * of the session (`core.ts`, `transport.ts`, `cache.ts`, `persist.ts`) can use them without
 * importing the session itself; `core.ts` re-exports them.
 */
import type { StorageLike } from './storage.js';

export type ProfileValue = string | number;

/** One `{Tag, Value}` pair, as on the wire. */
export interface ProfileItem {
  Tag: string;
  Value: ProfileValue;
}

/** A profile as the cache holds it: every known tag's value, and the version of its last change. */
export interface CachedProfile {
  account: string;
  version: number;
  updatedAtMs: number;
  items: Record<string, ProfileValue>;
  /** The account was deleted (a `delete` event); kept so older events are still recognised. */
  deleted?: boolean;
}

/** A change applied to the cache (one per server event, never repeated). */
export interface ProfileChange {
  account: string;
  version: number;
  kind: 'import' | 'set' | 'delete';
  /**
   * Who made the change: the account's own UserID when its user changed it, otherwise
   * `ADMIN_OPERATOR` (`'admin'`): an app admin or the app's backend. Which admin account is never
   * shown to users.
   */
  operator: string;
  timeMs: number;
  /** The items of this change only. */
  items: ProfileItem[];
  /** The whole profile after the change. */
  profile: CachedProfile;
  /** The change is to the signed-in user's own profile. */
  own: boolean;
  /** The change was (very likely) made by a call of this session. */
  local: boolean;
}

/** Anything constructible like the browser's WebSocket (the `ws` package qualifies). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;
export type FetchLike = (url: string, init: {
  method: string;
  body: string;
  headers: Record<string, string>;
  signal?: AbortSignal;
}) => Promise<{ status: number; text(): Promise<string>; headers?: { get(name: string): string | null } }>;

export type NetState = 'connected' | 'connecting' | 'disconnected';

export interface SessionOptions {
  /** The app's SDKAppID. */
  SDKAppID: number | string;
  /** Base URL of the Portrait server, e.g. `https://profiles.example.com` (http or https). */
  server: string;
  /** WebSocket implementation; default `globalThis.WebSocket`. `null`: no live push. */
  WebSocket?: WebSocketCtor | null;
  /** fetch implementation; default `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Where the live cache is persisted; default `localStorage` when available; `null`: nowhere. */
  storage?: StorageLike | null;
  /** Send `{"op":"ping"}` this often (ms). Default 15000. */
  pingIntervalMs?: number;
  /** No frame at all for pingIntervalMs + this (ms): the connection is dead, reconnect. Default 10000. */
  pongTimeoutMs?: number;
  /** First reconnect delay (ms); doubles per failed attempt, with jitter. Default 500. */
  reconnectBaseMs?: number;
  /** Longest reconnect delay (ms). Default 30000. */
  reconnectMaxMs?: number;
  /** HTTP call timeout (ms) → 2801. Default 10000. */
  requestTimeoutMs?: number;
  /** Client-side cap on subscriptions (own account included); the server's `max_subscriptions` wins if lower. */
  maxSubscriptions?: number;
}
