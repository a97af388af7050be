/**
 * The session every facade shares: authentication, the `/v1` HTTP calls, the WebSocket with
 * versioned catch-up, and the live profile cache.
 *
 * Cache rules (docs/client-api.md "Delivery guarantees"):
 * - every cached profile carries the version of its last change;
 * - a push event is applied only if its version is above the cached one (so a change is applied,
 *   and announced, once — never twice, whether it comes from catch-up or live push);
 * - an HTTP snapshot (full profile, no TagList) replaces the cached profile only if it is newer;
 * - the latest safe `cursor` is persisted with the cached profiles, and every (re)connection asks
 *   for `since=<cursor>`, so changes missed while offline or while the page was closed are
 *   delivered, each once.
 *
 * Below it: `transport.ts` (the `/v1` HTTP call, the server clock, WebSocket frame parsing),
 * `cache.ts` (the version rules above, as pure functions) and `persist.ts` (the persisted
 * document: its key, reading and writing).
 */
import { Emitter, Handler } from './emitter.js';
import { PortraitError } from './errors.js';
import { ERROR_CODE, MAX_ACCOUNTS_PER_GET } from './constants.js';
import { StorageLike, resolveStorage, safeRemove } from './storage.js';
import { persistKey, readPersisted, writePersisted } from './persist.js';
import { HttpTransport, parseFrame } from './transport.js';
import { afterEvent, lowestVersion, shownInstead, snapshotReplaces, snapshotsOf } from './cache.js';
import { CloseCode, WsErrorCode } from './wire.js';
import type { ClientOp, ProfileEvent, ServerFrame } from './wire.js';

export type {
  ProfileValue, ProfileItem, CachedProfile, ProfileChange, WebSocketLike, WebSocketCtor, FetchLike, NetState,
  SessionOptions,
} from './types.js';
import type {
  ProfileValue, ProfileItem, CachedProfile, ProfileChange, WebSocketLike, WebSocketCtor, FetchLike, NetState,
  SessionOptions,
} from './types.js';

/** Events of the session (facades translate them). */
export const SESSION_EVENT = {
  READY: 'ready',
  NOT_READY: 'notReady',
  PROFILE: 'profile',
  NET: 'net',
  KICKED: 'kicked',
  ERROR: 'error',
  RECONNECTING: 'reconnecting',
  DISCONNECTED: 'disconnected',
} as const;

export interface KickInfo {
  /** TYPES.KICKED_OUT_* value. */
  type: string;
  code: number;
  message: string;
}

interface SyncWaiter {
  since: number;
}
interface SubOp {
  waiter?: SyncWaiter;
  accounts: string[];
}

const WS_OPEN = 1;
const MAX_URL_ACCOUNTS_CHARS = 2000;

/** The shared session. Facades (`chat.ts`, `nim.ts`, `webim.ts`) are thin layers over it. */
export class PortraitSession {
  readonly sdkAppID: number;
  readonly server: string;
  private readonly opts: Required<Pick<SessionOptions,
    'pingIntervalMs' | 'pongTimeoutMs' | 'reconnectBaseMs' | 'reconnectMaxMs' | 'requestTimeoutMs'>>;
  private readonly wsCtor: WebSocketCtor | null;
  /** The `/v1` HTTP calls and the server clock. */
  private readonly http: HttpTransport;
  private readonly storage: StorageLike | null;
  private readonly clientMaxSubs: number;
  private readonly events = new Emitter();

  private userID = '';
  private userSig = '';
  private loggedIn = false;
  /** Bumped on login/logout so that callbacks of an older socket or session are ignored. */
  private generation = 0;

  private readonly cache = new Map<string, CachedProfile>();
  /** Subscribed accounts other than the own one, in LRU order (oldest first). */
  private readonly subs = new Map<string, true>();
  /** An update of ours returned this version: the cache must reach it before it is served. */
  private readonly minVersion = new Map<string, number>();
  private ownWritesInFlight = 0;
  private readonly ownWriteVersions = new Set<number>();

  // WebSocket state
  private ws: WebSocketLike | null = null;
  private netState: NetState = 'disconnected';
  private wsReady = false;
  private synced = false;
  private everSynced = false;
  private cursor: number | null = null;
  /** Lowest `since` still owed for accounts added while no connection could take it. */
  private pendingSince: number | null = null;
  private syncWaiters: SyncWaiter[] = [];
  private subOps: SubOp[] = [];
  private serverMaxSubs = Infinity;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private lastFrameAt = 0;
  private lastErrorFrame: { code: number; message: string } | null = null;
  /** Counters for diagnostics and tests. */
  readonly stats = { connects: 0, readies: 0, pingsSent: 0, pongs: 0, eventsApplied: 0, eventsDropped: 0, resubscribes: 0, resets: 0, gaps: 0 };
  private readonly onOnline = () => this.handleOnline();
  private readonly onOffline = () => this.handleOffline();
  private windowHooked = false;
  private persistTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly onPageHide = () => this.flushPersist();
  private readyPromise: Promise<void> | null = null;
  private resolveReady: (() => void) | null = null;

  constructor(options: SessionOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('options are required');
    const appID = Number(options.SDKAppID);
    if (!Number.isInteger(appID) || appID <= 0) throw new TypeError('SDKAppID must be a positive integer');
    if (typeof options.server !== 'string' || !/^https?:\/\//i.test(options.server)) {
      throw new TypeError('server must be an http(s) URL, e.g. http://127.0.0.1:8080');
    }
    this.sdkAppID = appID;
    this.server = options.server.replace(/\/+$/, '');
    this.opts = {
      pingIntervalMs: options.pingIntervalMs ?? 15000,
      pongTimeoutMs: options.pongTimeoutMs ?? 10000,
      reconnectBaseMs: options.reconnectBaseMs ?? 500,
      reconnectMaxMs: options.reconnectMaxMs ?? 30000,
      requestTimeoutMs: options.requestTimeoutMs ?? 10000,
    };
    const g = globalThis as { WebSocket?: WebSocketCtor; fetch?: FetchLike };
    this.wsCtor = options.WebSocket === null ? null : (options.WebSocket ?? g.WebSocket ?? null);
    const f = options.fetch ?? g.fetch;
    if (!f) throw new TypeError('no fetch implementation: pass options.fetch');
    const fetchImpl = options.fetch ? f : (f.bind(globalThis) as FetchLike);
    this.http = new HttpTransport(this.server, this.sdkAppID, fetchImpl, this.opts.requestTimeoutMs);
    this.storage = resolveStorage(options.storage);
    this.clientMaxSubs = options.maxSubscriptions ?? Infinity;
  }

  // ---------------------------------------------------------------- events

  on(name: string, fn: Handler<any>, ctx?: unknown): void {
    this.events.on(name, fn, ctx);
  }
  off(name: string, fn?: Handler<any>, ctx?: unknown): void {
    this.events.off(name, fn, ctx);
  }

  // ---------------------------------------------------------------- state

  /** The signed-in user ('' when signed out). */
  get me(): string {
    return this.loggedIn ? this.userID : '';
  }
  isLoggedIn(): boolean {
    return this.loggedIn;
  }
  /** Live push connected and caught up. */
  isSynced(): boolean {
    return this.synced;
  }
  isReady(): boolean {
    return this.loggedIn && (this.everSynced || !this.wsCtor);
  }
  getNetState(): NetState {
    return this.netState;
  }
  /** The last cursor the server confirmed (null before the first one). */
  getCursor(): number | null {
    return this.cursor;
  }
  /** Accounts subscribed besides the own one. */
  getSubscriptions(): string[] {
    return [...this.subs.keys()];
  }
  /** A cached profile (undefined if not cached or deleted). */
  getCached(account: string): CachedProfile | undefined {
    const p = this.cache.get(account);
    return p && !p.deleted ? p : undefined;
  }
  /** Resolves once the session is logged in and (if live) caught up. */
  whenReady(): Promise<void> {
    if (this.isReady()) return Promise.resolve();
    if (!this.readyPromise) {
      this.readyPromise = new Promise((resolve) => {
        this.resolveReady = resolve;
      });
    }
    return this.readyPromise;
  }

  // ---------------------------------------------------------------- HTTP

  /**
   * POSTs a `/v1` call and returns the answer envelope; rejects with PortraitError for a
   * transport failure (2800/2801) or a non-zero `ErrorCode` (the server's code as is).
   */
  async call(path: string, body: unknown): Promise<any> {
    if (!this.userID) throw new PortraitError(ERROR_CODE.SDK_IS_NOT_READY, 'not logged in: call login first');
    return this.http.post(path, body, this.userID, this.userSig);
  }

  /** The server's clock (Unix ms): the local clock corrected by the last answer's `Date` header. */
  serverNow(): number {
    return this.http.serverNow();
  }

  // ---------------------------------------------------------------- login / logout

  /** Verifies the credentials (get_my_profile), restores the persisted cache, starts live push. */
  async login(userID: string, userSig: string): Promise<{ repeatLogin: boolean }> {
    if (typeof userID !== 'string' || !userID) {
      throw new PortraitError(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, 'userID must be a non-empty string');
    }
    if (typeof userSig !== 'string' || !userSig) {
      throw new PortraitError(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, 'userSig must be a non-empty string');
    }
    if (this.loggedIn && this.userID === userID && this.userSig === userSig) return { repeatLogin: true };
    if (this.loggedIn) this.logout();

    const gen = ++this.generation;
    this.userID = userID;
    this.userSig = userSig;
    let answer: any;
    try {
      answer = await this.call('/v1/profile/get_my_profile', {});
    } catch (e) {
      if (gen === this.generation) {
        this.userID = '';
        this.userSig = '';
      }
      throw e;
    }
    if (gen !== this.generation) throw new PortraitError(ERROR_CODE.LOGGED_OUT, 'logged out during login');
    this.loggedIn = true;
    this.restore();
    const snap = snapshotsOf(answer)[0];
    const kept = this.cache.get(userID);
    if (snap && kept && snap.version < kept.version) {
      // The server's versions went back (its data was reset): the persisted state is meaningless.
      this.forgetState();
    }
    // With a persisted own profile, keep it: the catch-up will announce what changed meanwhile.
    if (snap && !this.cache.has(userID)) this.applySnapshot(snap);
    if (this.cursor === null) {
      const floor = this.minCachedVersion();
      if (floor !== null) this.pendingSince = this.pendingSince === null ? floor : Math.min(this.pendingSince, floor);
    }
    this.schedulePersist();
    this.hookWindow();
    if (this.wsCtor) this.connect();
    else this.markReady();
    return { repeatLogin: false };
  }

  /** Closes live push and forgets the session (the persisted cache stays for the next login). */
  logout(): void {
    const was = this.loggedIn;
    if (was) this.flushPersist();
    this.generation++;
    this.teardownSocket(1000, 'logout');
    this.clearTimers();
    this.unhookWindow();
    this.loggedIn = false;
    this.userID = '';
    this.userSig = '';
    this.resetMemory();
    this.setNet('disconnected');
    if (was) this.events.emit(SESSION_EVENT.NOT_READY, { reason: 'logout' });
  }

  /** Removes everything this session persisted for the signed-in user. */
  clearPersisted(): void {
    if (!this.storage || !this.userID) return;
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = null;
    safeRemove(this.storage, this.storageKey());
  }

  private resetMemory(): void {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = null;
    this.cache.clear();
    this.subs.clear();
    this.minVersion.clear();
    this.ownWriteVersions.clear();
    this.ownWritesInFlight = 0;
    this.cursor = null;
    this.pendingSince = null;
    this.syncWaiters = [];
    this.subOps = [];
    this.wsReady = false;
    this.synced = false;
    this.everSynced = false;
    this.attempt = 0;
    this.serverMaxSubs = Infinity;
    this.readyPromise = null;
    this.resolveReady = null;
  }

  private markReady(): void {
    const first = !this.everSynced;
    this.everSynced = true;
    if (first) {
      this.resolveReady?.();
      this.readyPromise = null;
      this.resolveReady = null;
      this.events.emit(SESSION_EVENT.READY, {});
    }
  }

  // ---------------------------------------------------------------- profile calls

  private applySnapshot(s: CachedProfile): CachedProfile {
    const cur = this.cache.get(s.account);
    if (snapshotReplaces(cur, s)) {
      this.cache.set(s.account, s);
      this.schedulePersist();
      return s;
    }
    return shownInstead(cur, s);
  }

  private fresh(account: string): boolean {
    if (!this.synced) return false;
    if (account !== this.userID && !this.subs.has(account)) return false;
    const p = this.cache.get(account);
    if (!p || p.deleted) return false;
    const min = this.minVersion.get(account);
    return min === undefined || p.version >= min;
  }

  /** The own profile: from the live cache when it is known fresh, else from the server. */
  async getMyProfile(opts: { sync?: boolean } = {}): Promise<CachedProfile> {
    this.requireLogin();
    if (!opts.sync && this.fresh(this.userID)) return this.cache.get(this.userID)!;
    const answer = await this.call('/v1/profile/get_my_profile', {});
    const s = snapshotsOf(answer)[0];
    if (!s) throw new PortraitError(40003, 'own profile missing from the answer', answer);
    return this.applySnapshot(s);
  }

  /**
   * Full profiles of `accounts` (nonexistent ones left out), in request order; calls the server
   * in chunks of 100 for those not fresh in the cache (all of them with `sync`), and subscribes
   * to every account returned (`subscribe: false` to skip).
   */
  async getProfiles(accounts: string[], opts: { sync?: boolean; subscribe?: boolean } = {}): Promise<CachedProfile[]> {
    this.requireLogin();
    const wanted = [...new Set(accounts)];
    const need = opts.sync ? wanted : wanted.filter((a) => !this.fresh(a));
    const fetched = new Map<string, CachedProfile>();
    for (let i = 0; i < need.length; i += MAX_ACCOUNTS_PER_GET) {
      const chunk = need.slice(i, i + MAX_ACCOUNTS_PER_GET);
      const answer = await this.call('/v1/profile/get_user_profile', { To_Account: chunk });
      for (const s of snapshotsOf(answer)) fetched.set(s.account, this.applySnapshot(s));
    }
    const out: CachedProfile[] = [];
    for (const a of wanted) {
      const p = fetched.get(a) ?? (need.includes(a) ? undefined : this.cache.get(a));
      if (p && !p.deleted) out.push(p);
    }
    if (opts.subscribe !== false && this.loggedIn) {
      const add = out.filter((p) => p.account !== this.userID);
      if (add.length) this.subscribeCached(add.map((p) => p.account), Math.min(...add.map((p) => p.version)));
    }
    return out;
  }

  /** Raw get_user_profile (TagList allowed; no caching, no subscription). */
  async rawGet(body: unknown): Promise<any> {
    this.requireLogin();
    return this.call('/v1/profile/get_user_profile', body);
  }

  /**
   * update_my_profile with these items; returns the new version. The cache is updated by the
   * push event of this change (so it is announced exactly once, on every device).
   */
  async updateMyProfile(items: ProfileItem[], expectedVersion?: number): Promise<{ version: number; answer: any }> {
    this.requireLogin();
    const body: { ProfileItem: ProfileItem[]; ExpectedVersion?: number } = { ProfileItem: items };
    if (expectedVersion !== undefined) body.ExpectedVersion = expectedVersion;
    this.ownWritesInFlight++;
    let answer: any;
    try {
      answer = await this.call('/v1/profile/update_my_profile', body);
    } finally {
      this.ownWritesInFlight--;
    }
    const version = typeof answer.Version === 'number' ? answer.Version : 0;
    if (version) {
      this.ownWriteVersions.add(version);
      const cur = this.cache.get(this.userID);
      if (!cur || cur.version < version) this.minVersion.set(this.userID, version);
    }
    return { version, answer };
  }

  /** The own profile as it is after an update that returned `version` (cached base + items). */
  predictOwn(items: ProfileItem[], version: number): CachedProfile {
    const cur = this.cache.get(this.userID);
    if (cur && cur.version >= version) return cur;
    const merged: Record<string, ProfileValue> = { ...(cur && !cur.deleted ? cur.items : {}) };
    for (const it of items) merged[it.Tag] = it.Value;
    return { account: this.userID, version, updatedAtMs: Date.now(), items: merged };
  }

  /** Raw update_my_profile (legacy facade): the answer envelope as is. */
  async rawUpdate(body: unknown): Promise<any> {
    this.requireLogin();
    this.ownWritesInFlight++;
    try {
      const answer = await this.call('/v1/profile/update_my_profile', body);
      if (typeof answer.Version === 'number') {
        this.ownWriteVersions.add(answer.Version);
        const cur = this.cache.get(this.userID);
        if (!cur || cur.version < answer.Version) this.minVersion.set(this.userID, answer.Version);
      }
      return answer;
    } finally {
      this.ownWritesInFlight--;
    }
  }

  private requireLogin(): void {
    if (!this.loggedIn) throw new PortraitError(ERROR_CODE.SDK_IS_NOT_READY, 'not logged in: call login first');
  }

  // ---------------------------------------------------------------- subscriptions

  /**
   * Subscribes to accounts (fetching the profiles of those not cached first, so that every
   * later change can be applied to a known base). Returns the accounts now subscribed.
   */
  async subscribe(accounts: string[]): Promise<string[]> {
    this.requireLogin();
    const list = [...new Set(accounts)].filter((a) => a !== this.userID);
    const uncached = list.filter((a) => !this.getCached(a));
    if (uncached.length) await this.getProfiles(uncached, { subscribe: true, sync: true });
    const cached = list.filter((a) => this.getCached(a));
    const fresh = cached.filter((a) => !this.subs.has(a));
    if (fresh.length) this.subscribeCached(fresh, Math.min(...fresh.map((a) => this.cache.get(a)!.version)));
    for (const a of cached) this.touch(a);
    return cached.filter((a) => this.subs.has(a));
  }

  /** Stops live updates of these accounts (the own account cannot be unsubscribed). */
  unsubscribe(accounts: string[]): void {
    this.requireLogin();
    const gone: string[] = [];
    for (const a of new Set(accounts)) {
      if (a === this.userID || !this.subs.has(a)) continue;
      this.subs.delete(a);
      this.cache.delete(a);
      this.minVersion.delete(a);
      gone.push(a);
    }
    if (!gone.length) return;
    this.schedulePersist();
    if (this.wsReady) this.send({ op: 'unsubscribe', accounts: gone });
  }

  private touch(a: string): void {
    if (this.subs.has(a)) {
      this.subs.delete(a);
      this.subs.set(a, true);
    }
  }

  private maxOthers(): number {
    return Math.max(0, Math.min(this.serverMaxSubs, this.clientMaxSubs) - 1);
  }

  /** Adds cached accounts to the subscription set; `since` covers their changes after the snapshot. */
  private subscribeCached(accounts: string[], since: number): void {
    const add: string[] = [];
    for (const a of accounts) {
      if (a === this.userID) continue;
      if (this.subs.has(a)) this.touch(a);
      else {
        this.subs.set(a, true);
        add.push(a);
      }
    }
    this.evictOverflow();
    const kept = add.filter((a) => this.subs.has(a));
    if (!kept.length) return;
    this.schedulePersist();
    if (this.wsReady && this.ws) {
      this.sendSubscribe(kept, since);
    } else {
      this.pendingSince = this.pendingSince === null ? since : Math.min(this.pendingSince, since);
    }
  }

  private evictOverflow(): void {
    const max = this.maxOthers();
    if (this.subs.size <= max) return;
    const evict: string[] = [];
    for (const a of this.subs.keys()) {
      if (this.subs.size - evict.length <= max) break;
      evict.push(a);
    }
    for (const a of evict) {
      this.subs.delete(a);
      this.cache.delete(a);
    }
    this.schedulePersist();
    if (evict.length && this.wsReady) this.send({ op: 'unsubscribe', accounts: evict });
  }

  // ---------------------------------------------------------------- WebSocket

  private wsBase(): string {
    return this.server.replace(/^http/i, 'ws');
  }

  /** The lowest version from which the next connection must catch up (null: none needed). */
  private resumeSince(): number | null {
    let s = this.cursor;
    for (const w of this.syncWaiters) s = s === null ? w.since : Math.min(s, w.since);
    if (this.pendingSince !== null) s = s === null ? this.pendingSince : Math.min(s, this.pendingSince);
    return s;
  }

  private connect(): void {
    if (!this.loggedIn || !this.wsCtor) return;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    this.teardownSocket(1000, 'reconnect');
    const since = this.resumeSince();
    const others = [...this.subs.keys()];
    const inUrl: string[] = [];
    let chars = 0;
    for (const a of others) {
      const len = encodeURIComponent(a).length + 3;
      if (chars + len > MAX_URL_ACCOUNTS_CHARS) break;
      inUrl.push(a);
      chars += len;
    }
    const rest = others.slice(inUrl.length);
    let url = `${this.wsBase()}/v1/ws?${this.http.authQuery(this.userID, this.userSig)}`;
    if (since !== null) url += `&since=${since}`;
    if (inUrl.length) url += `&accounts=${inUrl.map(encodeURIComponent).join(',')}`;

    this.setNet('connecting');
    this.wsReady = false;
    this.synced = false;
    this.lastErrorFrame = null;
    this.syncWaiters = since !== null ? [{ since }] : [];
    this.subOps = [];
    this.pendingSince = null;
    const gen = this.generation;
    let ws: WebSocketLike;
    try {
      ws = new this.wsCtor(url);
    } catch (e) {
      this.events.emit(SESSION_EVENT.ERROR, { code: ERROR_CODE.NETWORK_ERROR, message: String(e) });
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.stats.connects++;
    const restAccounts = rest;
    ws.onopen = () => {
      this.lastFrameAt = Date.now();
    };
    ws.onmessage = (ev) => {
      if (gen !== this.generation || this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      const frame = parseFrame(typeof ev.data === 'string' ? ev.data : String(ev.data));
      if (frame) this.handleFrame(frame, inUrl, restAccounts, since);
    };
    ws.onerror = () => {
      // a close event follows
    };
    ws.onclose = (ev) => {
      if (gen !== this.generation || this.ws !== ws) return;
      this.handleClose(ev?.code ?? 1006, ev?.reason ?? '');
    };
  }

  private send(frame: ClientOp): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) return;
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      // the close event will follow
    }
  }

  private sendSubscribe(accounts: string[], since: number | null): void {
    const waiter = since !== null ? { since } : undefined;
    if (waiter) this.syncWaiters.push(waiter);
    this.subOps.push({ waiter, accounts });
    this.synced = false;
    this.send(since !== null ? { op: 'subscribe', accounts, since } : { op: 'subscribe', accounts });
  }

  private handleFrame(f: ServerFrame, urlAccounts: string[], restAccounts: string[], since: number | null): void {
    switch (f.type) {
      case 'ready': {
        if (typeof f.version === 'number' && this.cursor !== null && f.version < this.cursor) {
          // The app's head is behind our cursor: the server's data was reset. Start over from
          // fresh reads of every account we show (without announcing them), then reconnect.
          this.restartFromScratch();
          return;
        }
        this.wsReady = true;
        this.attempt = 0;
        this.stats.readies++;
        if (typeof f.max_subscriptions === 'number' && f.max_subscriptions > 0) {
          this.serverMaxSubs = f.max_subscriptions;
        }
        this.setNet('connected');
        this.startPing();
        // Fit the server's limit first (the least recently used go), then subscribe the accounts
        // that did not fit in the URL.
        this.evictOverflow();
        const rest = restAccounts.filter((a) => this.subs.has(a));
        if (rest.length) this.sendSubscribe(rest, since);
        if (!this.syncWaiters.length) this.onCaughtUp();
        break;
      }
      case 'profile':
        this.applyEvent(f);
        if (typeof f.cursor === 'number') {
          this.setCursor(f.cursor);
          this.schedulePersist();
        }
        break;
      case 'synced':
        if (typeof f.cursor === 'number') this.setCursor(f.cursor);
        this.syncWaiters.shift();
        this.schedulePersist();
        if (!this.syncWaiters.length) this.onCaughtUp();
        break;
      case 'subscribed':
        this.subOps.shift();
        break;
      case 'unsubscribed':
        break;
      case 'pong':
        this.stats.pongs++;
        break;
      case 'error': {
        const code = typeof f.code === 'number' ? f.code : 0;
        const message = typeof f.message === 'string' ? f.message : `error ${code}`;
        this.lastErrorFrame = { code, message };
        if (code === WsErrorCode.TOO_MANY_SUBSCRIPTIONS && !f.op && this.wsReady) {
          // The accounts of the URL were over the server's limit: it subscribed only the own
          // account. Fit the limit and subscribe them again (catching up from the same point).
          this.evictOverflow();
          const again = urlAccounts.filter((a) => this.subs.has(a));
          if (again.length) this.sendSubscribe(again, since);
          this.stats.resubscribes++;
          break;
        }
        if (code === WsErrorCode.CHANGES_PRUNED && !f.op) {
          // The server no longer keeps every change this session missed (its change log is
          // pruned after a retention window): re-read what we show. The connection goes on
          // with the changes that are kept.
          void this.refetchAfterGap();
          break;
        }
        if (f.op === 'subscribe') {
          const op = this.subOps.shift();
          if (op) {
            if (op.waiter) this.syncWaiters = this.syncWaiters.filter((w) => w !== op.waiter);
            for (const a of op.accounts) {
              this.subs.delete(a);
              this.cache.delete(a);
            }
            this.schedulePersist();
            if (this.wsReady && !this.syncWaiters.length) this.onCaughtUp();
          }
        }
        this.events.emit(SESSION_EVENT.ERROR, { code, message, op: f.op });
        break;
      }
      default:
        break;
    }
  }

  /**
   * After error 49005 (changes since our cursor were pruned on the server): reads the own profile
   * and every subscribed one again, and announces each that moved on as a `set` change carrying
   * all its fields. Changes that arrive meanwhile are applied by version as usual, so the newer of
   * the two wins.
   */
  private async refetchAfterGap(): Promise<void> {
    const gen = this.generation;
    this.stats.gaps++;
    const accounts = [this.userID, ...[...this.subs.keys()].filter((a) => a !== this.userID)];
    for (let i = 0; i < accounts.length; i += MAX_ACCOUNTS_PER_GET) {
      let answer: any;
      try {
        answer = await this.call('/v1/profile/get_user_profile', { To_Account: accounts.slice(i, i + MAX_ACCOUNTS_PER_GET) });
      } catch {
        return; // the app can read again; the next reconnect catches up from the cursor
      }
      if (gen !== this.generation) return;
      for (const s of snapshotsOf(answer)) {
        const before = this.cache.get(s.account);
        if (this.applySnapshot(s) !== s || (before && !before.deleted && before.version >= s.version)) continue;
        this.events.emit(SESSION_EVENT.PROFILE, {
          account: s.account,
          version: s.version,
          kind: 'set',
          operator: '',
          timeMs: s.updatedAtMs,
          items: Object.entries(s.items).map(([Tag, Value]) => ({ Tag, Value })),
          profile: s,
          own: s.account === this.userID,
          local: false,
        } satisfies ProfileChange);
      }
    }
  }

  /** Drops the cache, subscriptions and cursor (memory and, at the next write, storage). */
  private forgetState(): void {
    this.cache.clear();
    this.subs.clear();
    this.minVersion.clear();
    this.cursor = null;
    this.pendingSince = null;
    this.syncWaiters = [];
    this.subOps = [];
  }

  private restartFromScratch(): void {
    const accounts = [...this.subs.keys()];
    const gen = this.generation;
    this.stats.resets++;
    this.teardownSocket(1000, 'server reset');
    this.wsReady = false;
    this.synced = false;
    this.forgetState();
    void (async () => {
      try {
        await this.getMyProfile({ sync: true });
        for (let i = 0; i < accounts.length && gen === this.generation; i += MAX_ACCOUNTS_PER_GET) {
          await this.getProfiles(accounts.slice(i, i + MAX_ACCOUNTS_PER_GET), { sync: true });
        }
      } catch {
        // reconnecting below retries the session; reads can be repeated by the app
      }
      if (gen !== this.generation || !this.loggedIn) return;
      if (this.cursor === null && this.pendingSince === null) {
        const floor = this.minCachedVersion();
        if (floor !== null) this.pendingSince = floor;
      }
      this.schedulePersist();
      this.connect();
    })();
  }

  private setCursor(c: number): void {
    if (this.cursor === null || c > this.cursor) this.cursor = c;
  }

  private onCaughtUp(): void {
    this.synced = true;
    this.schedulePersist();
    this.markReady();
  }

  private applyEvent(f: ProfileEvent): void {
    const account = f.account;
    const version = f.version;
    if (typeof account !== 'string' || typeof version !== 'number') return;
    const own = account === this.userID;
    if (!own && !this.subs.has(account)) return;
    const cur = this.cache.get(account);
    if (cur && version <= cur.version) {
      this.stats.eventsDropped++;
      return; // already applied: never announce twice
    }
    this.stats.eventsApplied++;
    const { kind, items, next } = afterEvent(cur, f);
    this.cache.set(account, next);
    const min = this.minVersion.get(account);
    if (min !== undefined && version >= min) this.minVersion.delete(account);
    this.schedulePersist();
    const local = own && (this.ownWriteVersions.delete(version) || (this.ownWritesInFlight > 0 && f.operator === this.userID));
    this.events.emit(SESSION_EVENT.PROFILE, {
      account,
      version,
      kind,
      operator: typeof f.operator === 'string' ? f.operator : '',
      timeMs: next.updatedAtMs,
      items,
      profile: next,
      own,
      local,
    } satisfies ProfileChange);
  }

  private handleClose(code: number, reason: string): void {
    this.ws = null;
    this.wsReady = false;
    this.synced = false;
    this.stopPing();
    // Remember what the next connection still owes us (catch-ups cut short).
    const resume = this.resumeSince();
    this.syncWaiters = [];
    this.subOps = [];
    this.pendingSince = resume !== null && (this.cursor === null || resume < this.cursor) ? resume : null;
    this.schedulePersist();
    this.setNet('disconnected');
    const err = this.lastErrorFrame;
    this.events.emit(SESSION_EVENT.DISCONNECTED, { code, reason, error: err });
    if (code === CloseCode.REVOKED || code === CloseCode.AUTH || code === CloseCode.EXPIRED) {
      // 4002: kicked (REST kick, 70001) or account deleted (70107). 4004: the UserSig expired
      // while connected. 4001: authentication refused at connect (expired/kicked sig, deleted
      // account, …). 70107 is not a kick: it is reported as an error.
      const errCode = err?.code ?? WsErrorCode.SIG_EXPIRED;
      const kickType = errCode !== WsErrorCode.SIG_EXPIRED ? '' : code === CloseCode.REVOKED ? 'REST_API_Kick' : 'userSigExpired';
      const info: KickInfo = { type: kickType, code: errCode, message: err?.message ?? reason ?? '' };
      this.flushPersist();
      this.generation++;
      this.clearTimers();
      this.unhookWindow();
      this.loggedIn = false;
      this.userID = '';
      this.userSig = '';
      this.resetMemory();
      if (kickType) this.events.emit(SESSION_EVENT.KICKED, info);
      else this.events.emit(SESSION_EVENT.ERROR, { code: errCode, message: info.message });
      this.events.emit(SESSION_EVENT.NOT_READY, { reason: kickType || 'auth', code: errCode });
      return;
    }
    this.scheduleReconnect(code === CloseCode.TOO_MANY_CONNECTIONS);
  }

  private isBrowserOffline(): boolean {
    const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
    return !!nav && nav.onLine === false && typeof (globalThis as any).addEventListener === 'function';
  }

  private scheduleReconnect(slow = false): void {
    if (!this.loggedIn || !this.wsCtor || this.reconnectTimer) return;
    if (this.isBrowserOffline()) return; // the 'online' event reconnects
    const exp = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectBaseMs * 2 ** this.attempt);
    const delay = slow ? this.opts.reconnectMaxMs : Math.round(exp / 2 + Math.random() * (exp / 2));
    this.attempt++;
    this.events.emit(SESSION_EVENT.RECONNECTING, { retryCount: this.attempt, duration: delay });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  /** Drops the connection as if the network had failed (used by the ping watchdog and 'offline'). */
  dropConnection(reason = 'dropped'): void {
    if (!this.ws) return;
    this.teardownSocket(4000, reason);
    this.handleClose(1006, reason);
  }

  private teardownSocket(code: number, reason: string): void {
    const ws = this.ws;
    this.ws = null;
    this.stopPing();
    if (!ws) return;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = () => {};
    try {
      ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
    } catch {
      // ignore
    }
  }

  private startPing(): void {
    this.stopPing();
    this.lastFrameAt = Date.now();
    const every = this.opts.pingIntervalMs;
    this.pingTimer = setInterval(() => {
      if (!this.ws) return;
      if (Date.now() - this.lastFrameAt > every + this.opts.pongTimeoutMs) {
        this.dropConnection('no answer to ping');
        return;
      }
      this.send({ op: 'ping' });
      this.stats.pingsSent++;
    }, every);
    const t = this.pingTimer as unknown as { unref?: () => void };
    t.unref?.();
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  private clearTimers(): void {
    this.stopPing();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }

  private setNet(state: NetState): void {
    if (this.netState === state) return;
    this.netState = state;
    this.events.emit(SESSION_EVENT.NET, { state });
  }

  private hookWindow(): void {
    const w = globalThis as any;
    if (this.windowHooked || typeof w.addEventListener !== 'function' || typeof w.document === 'undefined') return;
    w.addEventListener('online', this.onOnline);
    w.addEventListener('offline', this.onOffline);
    w.addEventListener('pagehide', this.onPageHide);
    this.windowHooked = true;
  }

  private unhookWindow(): void {
    const w = globalThis as any;
    if (!this.windowHooked) return;
    w.removeEventListener('online', this.onOnline);
    w.removeEventListener('offline', this.onOffline);
    w.removeEventListener('pagehide', this.onPageHide);
    this.windowHooked = false;
  }

  private handleOffline(): void {
    if (!this.loggedIn) return;
    if (this.reconnectTimer) {
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
    if (this.ws) this.dropConnection('browser offline');
  }

  private handleOnline(): void {
    if (!this.loggedIn || !this.wsCtor || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  // ---------------------------------------------------------------- persistence
  //
  // One JSON document per (server, app, user): the cursor to resume from, the subscriptions and
  // the cached profiles, always written whole, so what a reload reads is consistent even when two
  // tabs of the same user write in turn (last writer wins, with its own consistent state). Writes
  // are coalesced (50 ms) and flushed on pagehide, logout and kick.

  private storageKey(): string {
    return persistKey(this.server, this.sdkAppID, this.userID);
  }

  private restore(): void {
    if (!this.storage) return;
    const doc = readPersisted(this.storage, this.storageKey(), this.userID);
    if (!doc) return;
    this.cache.set(this.userID, doc.me);
    for (const p of doc.others) {
      this.cache.set(p.account, p);
      this.subs.set(p.account, true);
    }
    if (doc.cursor !== null) this.cursor = doc.cursor;
  }

  private minCachedVersion(): number | null {
    return lowestVersion(this.cache.values());
  }

  private schedulePersist(): void {
    if (!this.storage || !this.loggedIn || this.persistTimer) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = null;
      this.flushPersist();
    }, 50);
  }

  /** Writes the persisted document now. */
  flushPersist(): void {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.persistTimer = null;
    if (!this.storage || !this.loggedIn || !this.userID) return;
    writePersisted(this.storage, this.storageKey(), this.userID, this.subs.keys(), this.cache, this.resumeSince());
  }
}
