/**
 * NIM-style facade: `NIM.getInstance({account, token, onconnect, onmyinfo, onupdatemyinfo,
 * onusers, onupdateuser, …})`, `updateMyInfo / getUser / getUsers` with `done(error, result)`
 * callbacks, and `mergeUsers`. NIM user cards are mapped onto Portrait's profile fields (see
 * README "NIM field mapping"), so a card written here reads correctly through TencentCloudChat.
 */
import { NIM_MAX_GET_USERS, NIM_PARAM_ERROR } from './constants.js';
import { KickInfo, NetState, PortraitSession, ProfileChange, SESSION_EVENT, SessionOptions } from './core.js';
import { PortraitError } from './errors.js';
import {
  DEFAULT_NIM_FIELDS, NimFieldMap, NimGender, NimUser, mergeUsers, nimOptionsToItems, toNimUser,
} from './profile.js';
import { resolveServer } from './server-url.js';

/**
 * A `done` callback: `error` is null on success, and then `result` is the answer. On failure the
 * vendor passes no result; the type follows the vendor's typings (`result` is not optional).
 */
export type NimDone<T> = (error: PortraitError | null, result: T) => void;

/** The vendor's `NIMStrAnyObj`. */
export type NIMStrAnyObj = { [key: string]: any };
/** The vendor's `NIMCommonError`: what `done` and `onerror` get (a PortraitError has these fields). */
export interface NIMCommonError {
  code: number;
  message: string;
  event?: NIMStrAnyObj;
}
/** The vendor's gender strings. */
export type NIMUserGender = NimGender;
/** The vendor's name for a user card. */
export type NIMUserNameCard = NimUser;

/** `onconnect`'s argument: the vendor's fields plus Portrait's `account`. */
export interface NimConnectInfo {
  /** The signed-in account (Portrait). */
  account: string;
  /** The vendor's device id of the previous login: Portrait has no devices (''). */
  lastLoginDeviceId: string;
  customTag?: string;
  /** An id of this connection (new on every reconnect). */
  connectionId: string;
  /** Host and port of the Portrait server connected to. */
  ip: string;
  port: string;
  country?: string;
}

/** `ondisconnect`'s argument for a network drop (`'disconnected'`) or `disconnect()` (`'manuallyDisconnect'`). */
export interface NimDisconnectOffline {
  code: string;
  message: string;
  callFunc: string;
}
/** `ondisconnect`'s argument for a kick (`reason: 'serverKick'` or `'userSigExpired'`). */
export interface NimDisconnectKicked {
  code: 'kicked';
  reason: string;
  message: string;
  custom: string;
  /** Who kicked: the app's server (REST `kick`) or Portrait (an expired UserSig). */
  from: 'Server';
  customClientType: number;
}
/** `ondisconnect`'s argument for a failed login (the server's code). */
export interface NimDisconnectOther {
  code: number;
  message: string;
}
export type NimDisconnectInfo = NimDisconnectOffline | NimDisconnectKicked | NimDisconnectOther;

/** `getInstance` / `setOptions` options (the vendor's names; Portrait's additions marked). */
export interface NimOptions extends Omit<SessionOptions, 'SDKAppID' | 'server'> {
  /** The SDKAppID (NIM's name for the app's key); `SDKAppID` is accepted too. */
  appKey?: number | string;
  SDKAppID?: number | string;
  /** Portrait: the server's base URL (default: the page's origin). */
  server?: string;
  /** The UserID. */
  account: string;
  /** The UserSig of `account`. */
  token: string;
  /** Accepted: the token is always the account's UserSig (renew it with `setOptions({token})`). */
  authType?: number;
  /** Accepted; not sent (Portrait has no login extension). */
  loginExt?: string;
  /** Log connection events to the console (`logLevel: 'debug'`). */
  debug?: boolean;
  /** Console log level of the SDK's connection events; default 'off'. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'off';
  /** `false`: keep no local copy of cards between page loads (the same as `storage: null`). */
  db?: boolean;
  /**
   * `false`: no `onusers` at connect. Portrait has no friend list: the cards synced at connect
   * are those of `syncAccounts` and those cached by an earlier page load.
   */
  syncFriendUsers?: boolean;
  /** Custom fields that hold NIM's email / tel / custom (defaults: Tag_Profile_Custom_Email / _Tel / _Ex). */
  fields?: Partial<NimFieldMap>;
  /**
   * Portrait extension standing in for NIM's friend list: accounts whose cards are fetched at
   * connect and delivered with `onusers` (and kept fresh: `onupdateuser`). Cards cached by an
   * earlier page load of the same user are delivered too.
   */
  syncAccounts?: string[];
  /** Connected (after login and catch-up; again after every reconnect). */
  onconnect?: (info: NimConnectInfo) => void;
  /** The connection dropped (`'disconnected'`), was closed (`'manuallyDisconnect'`), kicked (`'kicked'`), or login failed. */
  ondisconnect?: (info: NimDisconnectInfo) => void;
  /** About to reconnect after `duration` ms. */
  onwillreconnect?: (info: { retryCount: number; duration: number }) => void;
  /** An error that no callback of a call receives (login failure, refused op). */
  onerror?: (error: PortraitError) => void;
  /** The own card, once connected. */
  onmyinfo?: (user: NimUser) => void;
  /** The own card changed on another device (or by an admin); the full card after the change. */
  onupdatemyinfo?: (user: NimUser) => void;
  /** Cards synced at connect (`syncAccounts` and cards cached earlier). */
  onusers?: (users: NimUser[]) => void;
  /** Another user's card changed; the full card after the change. */
  onupdateuser?: (user: NimUser) => void;
  /** The connect-time sync is done. */
  onsyncdone?: () => void;
}
/** The vendor's name for the options. */
export type NIMGetInstanceOptions = NimOptions;

/** `updateMyInfo` options. */
export interface NimUpdateMyInfoOptions {
  nick?: string;
  avatar?: string;
  sign?: string;
  gender?: NimGender;
  email?: string;
  birth?: string;
  tel?: string;
  custom?: string;
  /** Accepted: Portrait checks the app's sensitive words itself (40005). */
  antiSpamBusinessId?: string;
  done?: NimDone<NimUser>;
}

function nimError(code: number, message: string): PortraitError {
  return new PortraitError(code, message);
}

function toError(e: unknown): PortraitError {
  return e instanceof PortraitError ? e : nimError(500, String((e as Error)?.message ?? e));
}

/** The vendor's synchronous checks of `updateMyInfo` (it throws a parameter error). */
const VENDOR_CHECKS: Array<[keyof NimUpdateMyInfoOptions, RegExp, string]> = [
  ['email', /^\S+@\S+$/, 'email must contain @ with at least one character on each side'],
  ['birth', /^(\d{4})-(0[1-9]|1[012])-(0[1-9]|[12][0-9]|3[01])$/, 'birth must be "yyyy-MM-dd"'],
  ['tel', /^[+\-()\d]+$/, 'tel may contain only +, -, (, ) and digits'],
];
const GENDERS: readonly string[] = ['unknown', 'male', 'female'];
const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'off'] as const;

/** One NIM-style SDK instance (connects as soon as it is created). */
export class NimInstance {
  readonly session: PortraitSession;
  private options: NimOptions;
  private fields: NimFieldMap;
  private loginPromise: Promise<void> | null = null;
  private connectedOnce = false;
  private manualDisconnect = false;

  constructor(options: NimOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('options are required');
    this.options = { ...options };
    this.fields = { ...DEFAULT_NIM_FIELDS, ...(options.fields ?? {}) };
    this.session = new PortraitSession({
      ...options,
      server: resolveServer(options, 'NIM.getInstance'),
      SDKAppID: (options.SDKAppID ?? options.appKey) as number,
      ...(options.db === false ? { storage: null } : {}),
    });
    const s = this.session;
    s.on(SESSION_EVENT.READY, () => void this.afterReady());
    s.on(SESSION_EVENT.NET, (e: { state: NetState }) => {
      this.log('info', `net state ${e.state}`);
      if (e.state === 'connected' && this.connectedOnce) this.options.onconnect?.(this.connectInfo());
    });
    s.on(SESSION_EVENT.DISCONNECTED, (e: { code: number; reason: string }) => {
      if (e.code === 4001 || e.code === 4002 || e.code === 4004) return; // reported as kicked / error below
      this.options.ondisconnect?.({
        code: 'disconnected', message: e.reason || `connection closed (${e.code})`, callFunc: 'link::onclose',
      });
    });
    s.on(SESSION_EVENT.RECONNECTING, (e: { retryCount: number; duration: number }) => {
      this.log('info', `reconnecting in ${e.duration} ms (attempt ${e.retryCount})`);
      this.options.onwillreconnect?.(e);
    });
    s.on(SESSION_EVENT.KICKED, (k: KickInfo) => {
      this.options.ondisconnect?.({
        code: 'kicked', reason: k.type === 'REST_API_Kick' ? 'serverKick' : k.type, message: k.message,
        custom: '', from: 'Server', customClientType: 0,
      });
    });
    s.on(SESSION_EVENT.ERROR, (e: { code: number; message: string }) => this.options.onerror?.(nimError(e.code, e.message)));
    s.on(SESSION_EVENT.PROFILE, (c: ProfileChange) => {
      if (c.kind === 'delete') return;
      const user = toNimUser(c.profile, this.fields);
      if (c.own) {
        // NIM reports the own card changed elsewhere; this device's own update answers its `done`.
        if (!c.local) this.options.onupdatemyinfo?.(user);
      } else {
        this.options.onupdateuser?.(user);
      }
    });
    this.connect();
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', message: string): void {
    const o = this.options;
    const at = LOG_LEVELS.indexOf(o.logLevel ?? (o.debug ? 'debug' : 'off'));
    if (LOG_LEVELS.indexOf(level) >= at && at < LOG_LEVELS.indexOf('off')) {
      console[level](`[portrait nim ${o.account}] ${message}`);
    }
  }

  private connectInfo(): NimConnectInfo {
    const u = new URL(this.session.server);
    return {
      account: this.options.account,
      lastLoginDeviceId: '',
      connectionId: `${this.options.account}-${this.session.stats.connects}`,
      ip: u.hostname,
      port: u.port || (u.protocol === 'https:' ? '443' : '80'),
    };
  }

  /**
   * Updates the options (the vendor's `setOptions`; also what a repeated `getInstance` of the
   * same account does): callbacks are replaced, a new `token` is used from the next connect.
   */
  setOptions(options: Partial<NimOptions>): void {
    if (!options || typeof options !== 'object') return;
    this.options = { ...this.options, ...options };
    if (options.fields) this.fields = { ...DEFAULT_NIM_FIELDS, ...options.fields };
  }

  /** Whether `disconnect()` / `logout()` closed the instance (a repeated `getInstance` reconnects it). */
  isDisconnected(): boolean {
    return this.manualDisconnect;
  }

  /** (Re)connects with the instance's account and token. */
  connect(): void {
    this.manualDisconnect = false;
    this.log('info', 'connecting');
    this.loginPromise = this.session
      .login(this.options.account, this.options.token)
      .then(() => undefined)
      .catch((e) => {
        const err = toError(e);
        this.log('error', `login failed: ${err.code} ${err.message}`);
        this.options.onerror?.(err);
        this.options.ondisconnect?.({ code: err.code, message: err.message });
        throw err;
      });
    this.loginPromise.catch(() => {});
  }

  private async afterReady(): Promise<void> {
    const first = !this.connectedOnce;
    this.connectedOnce = true;
    const o = this.options;
    if (!first) return;
    o.onconnect?.(this.connectInfo());
    try {
      const me = await this.session.getMyProfile();
      this.options.onmyinfo?.(toNimUser(me, this.fields));
      const accounts = this.options.syncFriendUsers === false ? []
        : [...new Set([...(o.syncAccounts ?? []), ...this.session.getSubscriptions()])].filter((a) => a !== o.account);
      if (accounts.length) {
        const users = await this.session.getProfiles(accounts);
        this.options.onusers?.(users.map((p) => toNimUser(p, this.fields)));
      }
      this.options.onsyncdone?.();
    } catch (e) {
      this.options.onerror?.(toError(e));
    }
  }

  private async ready(): Promise<void> {
    if (!this.loginPromise) throw nimError(2999, 'not connected: call connect()');
    await this.loginPromise;
  }

  private run<T>(done: NimDone<T> | undefined, work: () => Promise<T>): void {
    const cb = typeof done === 'function' ? done : () => {};
    this.ready()
      .then(work)
      .then((r) => cb(null, r), (e) => cb(toError(e), undefined as unknown as T));
  }

  private later<T>(done: NimDone<T> | undefined, err: PortraitError): void {
    if (typeof done === 'function') setTimeout(() => done(err, undefined as unknown as T), 0);
  }

  /**
   * Updates the own card; `done(error, user)` gets the full card after the update. Like the
   * vendor's, it throws at once (a 414 PortraitError) for a `gender`, `email`, `birth` or `tel`
   * that is not in the vendor's format; other problems go to `done`.
   */
  updateMyInfo(options: NimUpdateMyInfoOptions): void {
    if (options && typeof options === 'object') {
      if (options.gender !== undefined && !GENDERS.includes(options.gender)) {
        throw nimError(NIM_PARAM_ERROR, `updateMyInfo: gender must be one of ${GENDERS.join(', ')}`);
      }
      for (const [name, re, rule] of VENDOR_CHECKS) {
        const v = options[name];
        if (v !== undefined && v !== '' && !(typeof v === 'string' && re.test(v))) {
          throw nimError(NIM_PARAM_ERROR, `updateMyInfo: ${rule}`);
        }
      }
    }
    let items;
    try {
      const { antiSpamBusinessId: _a, done: _d, ...card } = options ?? ({} as NimUpdateMyInfoOptions);
      items = nimOptionsToItems(options ? card : options, this.fields);
    } catch (e) {
      this.later(options?.done, toError(e));
      return;
    }
    this.run(options.done, async () => {
      const { version } = await this.session.updateMyProfile(items);
      return toNimUser(this.session.predictOwn(items, version), this.fields);
    });
  }

  /**
   * One user's card; `sync: true` forces a server read. For an account that does not exist the
   * result is `null`, as the vendor's SDK does at run time (its typings do not say so).
   */
  getUser(options: { account: string; sync?: boolean; done?: NimDone<NimUser> }): void {
    if (typeof options?.account !== 'string' || !options.account) {
      this.later(options?.done, nimError(NIM_PARAM_ERROR, 'getUser: account is required'));
      return;
    }
    this.run(options.done, async () => {
      const [p] = await this.session.getProfiles([options.account], { sync: !!options.sync });
      return (p ? toNimUser(p, this.fields) : null) as NimUser;
    });
  }

  /** The own card (the vendor's `getMyInfo`: `getUser` of the own account). */
  getMyInfo(options: { sync?: boolean; done?: NimDone<NimUser> } = {}): void {
    this.getUser({ ...options, account: this.options.account });
  }

  /** Up to 150 cards (server calls of at most 100 each); missing accounts are left out. */
  getUsers(options: { accounts: string[]; sync?: boolean; done?: NimDone<NimUser[]> }): void {
    const list = options?.accounts;
    const cb = options?.done;
    if (!Array.isArray(list) || list.some((a) => typeof a !== 'string' || !a)) {
      this.later(cb, nimError(NIM_PARAM_ERROR, 'getUsers: accounts must be an array of accounts'));
      return;
    }
    if (list.length > NIM_MAX_GET_USERS) {
      this.later(cb, nimError(NIM_PARAM_ERROR, `getUsers: at most ${NIM_MAX_GET_USERS} accounts per call`));
      return;
    }
    this.run(cb, async () => {
      const ps = await this.session.getProfiles(list, { sync: !!options.sync });
      return ps.map((p) => toNimUser(p, this.fields));
    });
  }

  /**
   * Cards held locally, without a request (the vendor's `getUsersFromDB`): the own card and
   * those of subscribed users, restored from the persisted cache at login. `accountIds` omitted:
   * every card held.
   */
  getUsersFromDB(options: { accountIds?: string[]; done?: NimDone<NimUser[]> } = {}): void {
    const ids = options?.accountIds;
    if (ids !== undefined && !Array.isArray(ids)) {
      this.later(options.done, nimError(NIM_PARAM_ERROR, 'getUsersFromDB: accountIds must be an array'));
      return;
    }
    const me = this.session.me;
    const held = [...new Set([...(me ? [me] : []), ...this.session.getSubscriptions()])];
    const users = (ids ?? held)
      .map((a) => this.session.getCached(a))
      .filter((p): p is NonNullable<typeof p> => !!p)
      .map((p) => toNimUser(p, this.fields));
    if (typeof options.done === 'function') setTimeout(() => options.done!(null, users), 0);
  }

  /** NIM's mergeUsers: merge cards by account (fields of newer cards win). */
  mergeUsers(olds: NimUser | NimUser[] | null | undefined, news: NimUser | NimUser[] | null | undefined): NimUser[] {
    return mergeUsers(olds, news);
  }

  /** Portrait extension: keep these users' cards fresh (`onupdateuser`) without getUsers. */
  subscribeUsers(options: { accounts: string[]; done?: NimDone<string[]> }): void {
    this.run(options?.done, () => this.session.subscribe(options.accounts ?? []));
  }

  /** Portrait extension: stop `onupdateuser` for these users. */
  unsubscribeUsers(options: { accounts: string[]; done?: NimDone<void> }): void {
    this.run(options?.done, async () => this.session.unsubscribe(options.accounts ?? []));
  }

  /** Closes the connection (`ondisconnect({code: 'manuallyDisconnect'})`). */
  disconnect(options: { done?: (err: PortraitError | null, data: NIMStrAnyObj) => void } = {}): void {
    if (this.manualDisconnect) {
      options?.done?.(null, {});
      return;
    }
    this.manualDisconnect = true;
    const was = this.session.isLoggedIn();
    this.session.logout();
    this.connectedOnce = false;
    this.loginPromise = null;
    this.log('info', 'disconnected by the app');
    if (was) {
      this.options.ondisconnect?.({ code: 'manuallyDisconnect', message: 'disconnected by the app', callFunc: 'link::disconnect' });
    }
    options?.done?.(null, {});
  }

  /** Signs out (the vendor's deprecated `logout`: `disconnect` does it too). */
  logout(): void {
    this.disconnect({});
  }

  /** Disconnects and releases the instance (a later `getInstance` of the account creates a new one). */
  destroy(options: { done?: (err: PortraitError | null, data: NIMStrAnyObj) => void } = {}): void {
    this.disconnect({});
    for (const [k, v] of instances) if (v === this) instances.delete(k);
    options?.done?.(null, {});
  }
}

/** One instance per app and account, as the vendor's `getInstance`. */
const instances = new Map<string, NimInstance>();

/** The `NIM` namespace object. */
const NIM = {
  /**
   * The instance of `options.account`, created and connected on the first call. Later calls
   * with the same account return the same instance (no second connection, no doubled
   * callbacks): its options are updated (`setOptions`) and, if `disconnect()` closed it, it
   * connects again.
   */
  getInstance(options: NimOptions): NimInstance {
    const key = `${options?.SDKAppID ?? options?.appKey}|${options?.account}`;
    const had = instances.get(key);
    if (had) {
      had.setOptions(options);
      if (had.isDisconnected()) had.connect();
      return had;
    }
    const inst = new NimInstance(options);
    instances.set(key, inst);
    return inst;
  },
  /** Static form of mergeUsers. */
  mergeUsers,
  util: {
    /** `NIM.util.merge(target, ...sources)`: shallow merge into a new object. */
    merge<T extends object>(...objs: Array<Partial<T> | null | undefined>): T {
      return Object.assign({}, ...objs.filter(Boolean)) as T;
    },
  },
};

export default NIM;
export { NIM };
