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
  DEFAULT_NIM_FIELDS, NimFieldMap, NimUser, mergeUsers, nimOptionsToItems, toNimUser,
} from './profile.js';

export type NimDone<T> = (error: PortraitError | null, result?: T) => void;

/** `getInstance` options. */
export interface NimOptions extends Omit<SessionOptions, 'SDKAppID'> {
  /** The SDKAppID (NIM's name for the app's key); `SDKAppID` is accepted too. */
  appKey?: number | string;
  SDKAppID?: number | string;
  /** The UserID. */
  account: string;
  /** The UserSig of `account`. */
  token: string;
  /** Custom fields that hold NIM's email / tel / custom (defaults: Tag_Profile_Custom_Email / _Tel / _Ex). */
  fields?: Partial<NimFieldMap>;
  /**
   * Portrait extension standing in for NIM's friend list: accounts whose cards are fetched at
   * connect and delivered with `onusers` (and kept fresh: `onupdateuser`). Cards cached by an
   * earlier page load of the same user are delivered too.
   */
  syncAccounts?: string[];
  /** Connected (after login and catch-up; again after every reconnect). */
  onconnect?: (info: { account: string }) => void;
  /** The connection dropped (`code: 'disconnected'`), was closed (`'logout'`) or kicked (`'kicked'`). */
  ondisconnect?: (info: { code: string | number; message: string; reason?: string }) => void;
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

function nimError(code: number, message: string): PortraitError {
  return new PortraitError(code, message);
}

function toError(e: unknown): PortraitError {
  return e instanceof PortraitError ? e : nimError(500, String((e as Error)?.message ?? e));
}

/** One NIM-style SDK instance (connects as soon as it is created). */
export class NimInstance {
  readonly session: PortraitSession;
  private readonly options: NimOptions;
  private readonly fields: NimFieldMap;
  private loginPromise: Promise<void> | null = null;
  private connectedOnce = false;
  private manualDisconnect = false;

  constructor(options: NimOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('options are required');
    this.options = options;
    this.fields = { ...DEFAULT_NIM_FIELDS, ...(options.fields ?? {}) };
    this.session = new PortraitSession({ ...options, SDKAppID: (options.SDKAppID ?? options.appKey) as number });
    const s = this.session;
    s.on(SESSION_EVENT.READY, () => void this.afterReady());
    s.on(SESSION_EVENT.NET, (e: { state: NetState }) => {
      if (e.state === 'connected' && this.connectedOnce) this.options.onconnect?.({ account: this.options.account });
    });
    s.on(SESSION_EVENT.DISCONNECTED, (e: { code: number; reason: string }) => {
      if (e.code === 4001 || e.code === 4002 || e.code === 4004) return; // reported as kicked / error below
      this.options.ondisconnect?.({ code: 'disconnected', message: e.reason || `connection closed (${e.code})` });
    });
    s.on(SESSION_EVENT.RECONNECTING, (e: { retryCount: number; duration: number }) => this.options.onwillreconnect?.(e));
    s.on(SESSION_EVENT.KICKED, (k: KickInfo) => {
      this.options.ondisconnect?.({ code: 'kicked', reason: k.type === 'REST_API_Kick' ? 'serverKick' : k.type, message: k.message });
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

  /** (Re)connects with the instance's account and token. */
  connect(): void {
    this.manualDisconnect = false;
    this.loginPromise = this.session
      .login(this.options.account, this.options.token)
      .then(() => undefined)
      .catch((e) => {
        const err = toError(e);
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
    o.onconnect?.({ account: o.account });
    try {
      const me = await this.session.getMyProfile();
      o.onmyinfo?.(toNimUser(me, this.fields));
      const accounts = [...new Set([...(o.syncAccounts ?? []), ...this.session.getSubscriptions()])]
        .filter((a) => a !== o.account);
      if (accounts.length) {
        const users = await this.session.getProfiles(accounts);
        o.onusers?.(users.map((p) => toNimUser(p, this.fields)));
      }
      o.onsyncdone?.();
    } catch (e) {
      o.onerror?.(toError(e));
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
      .then((r) => cb(null, r), (e) => cb(toError(e)));
  }

  /** Updates the own card; `done(error, user)` gets the full card after the update. */
  updateMyInfo(options: Partial<Omit<NimUser, 'account' | 'updateTime' | 'version'>> & { done?: NimDone<NimUser> }): void {
    let items;
    try {
      items = nimOptionsToItems(options, this.fields);
    } catch (e) {
      const cb = options?.done;
      if (typeof cb === 'function') setTimeout(() => cb(toError(e)), 0);
      return;
    }
    this.run(options.done, async () => {
      const { version } = await this.session.updateMyProfile(items);
      return toNimUser(this.session.predictOwn(items, version), this.fields);
    });
  }

  /** One user's card (`null` if the account does not exist); `sync: true` forces a server read. */
  getUser(options: { account: string; sync?: boolean; done?: NimDone<NimUser | null> }): void {
    if (typeof options?.account !== 'string' || !options.account) {
      const cb = options?.done;
      if (typeof cb === 'function') setTimeout(() => cb(nimError(NIM_PARAM_ERROR, 'getUser: account is required')), 0);
      return;
    }
    this.run(options.done, async () => {
      const [p] = await this.session.getProfiles([options.account], { sync: !!options.sync });
      return p ? toNimUser(p, this.fields) : null;
    });
  }

  /** Up to 150 cards (server calls of at most 100 each); missing accounts are left out. */
  getUsers(options: { accounts: string[]; sync?: boolean; done?: NimDone<NimUser[]> }): void {
    const list = options?.accounts;
    const cb = options?.done;
    if (!Array.isArray(list) || list.some((a) => typeof a !== 'string' || !a)) {
      if (typeof cb === 'function') setTimeout(() => cb(nimError(NIM_PARAM_ERROR, 'getUsers: accounts must be an array of accounts')), 0);
      return;
    }
    if (list.length > NIM_MAX_GET_USERS) {
      if (typeof cb === 'function') {
        setTimeout(() => cb(nimError(NIM_PARAM_ERROR, `getUsers: at most ${NIM_MAX_GET_USERS} accounts per call`)), 0);
      }
      return;
    }
    this.run(cb, async () => {
      const ps = await this.session.getProfiles(list, { sync: !!options.sync });
      return ps.map((p) => toNimUser(p, this.fields));
    });
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

  /** Closes the connection (`ondisconnect({code: 'logout'})`). */
  disconnect(options: { done?: (err: null) => void } = {}): void {
    if (this.manualDisconnect) {
      options.done?.(null);
      return;
    }
    this.manualDisconnect = true;
    const was = this.session.isLoggedIn();
    this.session.logout();
    this.connectedOnce = false;
    this.loginPromise = null;
    if (was) this.options.ondisconnect?.({ code: 'logout', message: 'disconnected by the app' });
    options.done?.(null);
  }

  /** Disconnects and releases the instance. */
  destroy(options: { done?: (err: null) => void } = {}): void {
    this.disconnect({});
    instances.delete(this);
    options.done?.(null);
  }
}

const instances = new Set<NimInstance>();

/** The `NIM` namespace object. */
const NIM = {
  /** Creates an instance and connects it (`server` and `appKey`/`SDKAppID` are Portrait's). */
  getInstance(options: NimOptions): NimInstance {
    const inst = new NimInstance(options);
    instances.add(inst);
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
