/**
 * TencentCloudChat-style facade: `TencentCloudChat.create({SDKAppID, server})` → an instance with
 * `login / logout / getMyProfile / getUserProfile / updateMyProfile / on / off`, promises that
 * resolve to `{code: 0, data}` and reject with `{code, message}`, and the vendor's events.
 */
import * as C from './constants.js';
import { ERROR_CODE, EVENT, MAX_ACCOUNTS_PER_GET } from './constants.js';
import { PortraitSession, SESSION_EVENT, SessionOptions, ProfileChange, KickInfo, NetState } from './core.js';
import { PortraitError } from './errors.js';
import { Emitter, Handler } from './emitter.js';
import { Profile, UpdateMyProfileOptions, chatOptionsToItems, toChatProfile } from './profile.js';
import { resolveServer } from './server-url.js';

/**
 * `create` options: the vendor's (`SDKAppID`, `proxyServer`, …) plus Portrait's `server` and
 * session tuning. `server` is optional so that vendor-typed code compiles: without it the SDK
 * uses `proxyServer`, else the page's origin.
 */
export interface CreateOptions extends Omit<SessionOptions, 'server'> {
  /** Portrait's base URL, e.g. `https://profiles.example.com`. */
  server?: string;
  /** The vendor's WebSocket proxy address: used as the server when `server` is not given. */
  proxyServer?: String | undefined;
  /** Accepted for the vendor's typings; Portrait has no file upload. */
  fileUploadProxy?: String | undefined;
  /** Accepted for the vendor's typings; Portrait has no file download. */
  fileDownloadProxy?: String | undefined;
  /** Accepted for the vendor's typings (scene of chat-uikit). */
  scene?: String | undefined;
}

/** What `login` resolves to (`data`): the vendor's fields. */
export interface LoginResult {
  repeatLogin: boolean;
  actionStatus: 'OK';
  errorCode: 0;
  errorInfo: string;
}

/** What every promise resolves to. */
export interface ChatResponse<T> {
  code: 0;
  data: T;
}

/** What every event handler receives. */
export interface ChatEvent<T = unknown> {
  name: string;
  data: T;
}

function ok<T>(data: T): ChatResponse<T> {
  return { code: 0, data };
}

function asPortraitError(e: unknown): PortraitError {
  if (e instanceof PortraitError) return e;
  return new PortraitError(ERROR_CODE.NETWORK_ERROR, String((e as Error)?.message ?? e));
}

/** One TencentCloudChat-style SDK instance. */
export class ChatInstance {
  /** The shared session (also used by `createWebim({chat})`). */
  readonly session: PortraitSession;
  private readonly events = new Emitter();
  private destroyed = false;

  constructor(options: CreateOptions) {
    if (!options || typeof options !== 'object') throw new TypeError('options are required');
    this.session = new PortraitSession({ ...options, server: resolveServer(options, 'TencentCloudChat.create') });
    const s = this.session;
    s.on(SESSION_EVENT.READY, () => this.emit(EVENT.SDK_READY, undefined));
    s.on(SESSION_EVENT.NOT_READY, () => this.emit(EVENT.SDK_NOT_READY, undefined));
    s.on(SESSION_EVENT.NET, (e: { state: NetState }) => this.emit(EVENT.NET_STATE_CHANGE, { state: e.state }));
    s.on(SESSION_EVENT.KICKED, (k: KickInfo) => this.emit(EVENT.KICKED_OUT, { type: k.type }));
    s.on(SESSION_EVENT.ERROR, (e: { code: number; message: string }) =>
      this.emit(EVENT.ERROR, { code: e.code, message: e.message }));
    s.on(SESSION_EVENT.PROFILE, (c: ProfileChange) => {
      if (c.kind === 'delete') return; // the vendor has no "profile deleted" event
      this.emit(EVENT.PROFILE_UPDATED, [toChatProfile(c.profile)]);
    });
  }

  private emit(name: string, data: unknown): void {
    this.events.emit(name, { name, data } satisfies ChatEvent);
  }

  /** Listens to an `EVENT.*`; the handler gets `{name, data}`. */
  on(eventName: string, handler: Handler<ChatEvent<any>> | Function, context?: unknown): void {
    this.events.on(eventName, handler as Handler<ChatEvent<any>>, context);
  }

  /** Stops listening (`handler` omitted: every handler of that event). */
  off(eventName: string, handler?: Handler<ChatEvent<any>> | Function, context?: unknown): void {
    this.events.off(eventName, handler as Handler<ChatEvent<any>> | undefined, context);
  }

  /**
   * Signs in: checks the UserSig with the server, then opens live push (SDK_READY when caught up).
   * `data`: `{repeatLogin, actionStatus: 'OK', errorCode: 0, errorInfo}` as with the vendor.
   */
  async login(options: { userID: string; userSig: string }): Promise<ChatResponse<LoginResult>> {
    if (this.destroyed) throw new PortraitError(ERROR_CODE.SDK_IS_NOT_READY, 'instance destroyed');
    if (typeof options !== 'object' || options === null) {
      throw new PortraitError(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, 'login: options {userID, userSig} are required');
    }
    try {
      const { repeatLogin } = await this.session.login(options.userID, options.userSig);
      return ok({
        repeatLogin, actionStatus: 'OK', errorCode: 0, errorInfo: repeatLogin ? 'the user is already signed in' : '',
      });
    } catch (e) {
      throw asPortraitError(e);
    }
  }

  /** Signs out (closes live push; the persisted cache stays for the next login of this user). */
  async logout(): Promise<ChatResponse<{}>> {
    this.session.logout();
    return ok({});
  }

  /** Signs out and drops every handler. */
  async destroy(): Promise<ChatResponse<{}>> {
    this.session.logout();
    this.emit(EVENT.SDK_DESTROY, undefined);
    this.events.clear();
    this.destroyed = true;
    return ok({});
  }

  /** The signed-in UserID ('' when signed out), as the vendor's `getLoginUser`. */
  getLoginUser(): string {
    return this.session.me;
  }

  /**
   * The server's time in Unix seconds (the vendor's `getServerTime`): the local clock corrected by
   * the `Date` header of the server's last answer.
   */
  getServerTime(): number {
    return Math.floor(this.session.serverNow() / 1000);
  }

  /** SDK_READY has fired and the instance is signed in. */
  isReady(): boolean {
    return this.session.isReady();
  }

  /** The own profile (from the live cache when it is known fresh). */
  async getMyProfile(): Promise<ChatResponse<Profile>> {
    try {
      return ok(toChatProfile(await this.session.getMyProfile()));
    } catch (e) {
      throw asPortraitError(e);
    }
  }

  /**
   * Profiles of `userIDList` (an array even for one user; more than 100 → only the first 100).
   * Accounts that do not exist are left out. Every returned account is kept fresh by live push
   * (PROFILE_UPDATED fires for its changes).
   */
  async getUserProfile(options: { userIDList: string[] }): Promise<ChatResponse<Profile[]>> {
    const list = options?.userIDList;
    if (!Array.isArray(list) || list.some((u) => typeof u !== 'string' || !u)) {
      throw new PortraitError(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, 'getUserProfile: userIDList must be an array of UserIDs');
    }
    if (!list.length) return ok([]);
    try {
      const profiles = await this.session.getProfiles(list.slice(0, MAX_ACCOUNTS_PER_GET));
      return ok(profiles.map(toChatProfile));
    } catch (e) {
      throw asPortraitError(e);
    }
  }

  /**
   * Updates the own profile. The vendor's client-side checks run first (2721 invalid parameter,
   * 2722 nothing to update) and no request is made if they fail. Resolves with the updated Profile.
   */
  async updateMyProfile(options: UpdateMyProfileOptions): Promise<ChatResponse<Profile>> {
    const items = chatOptionsToItems(options);
    try {
      const { version } = await this.session.updateMyProfile(items, options.expectedVersion);
      return ok(toChatProfile(this.session.predictOwn(items, version)));
    } catch (e) {
      throw asPortraitError(e);
    }
  }

  /**
   * Keeps these users' profiles fresh (PROFILE_UPDATED for each of their changes) without
   * calling getUserProfile. Resolves with the accounts now subscribed (nonexistent ones left out).
   */
  async subscribeUserProfile(options: { userIDList: string[] }): Promise<ChatResponse<{ userIDList: string[] }>> {
    const list = options?.userIDList;
    if (!Array.isArray(list) || list.some((u) => typeof u !== 'string' || !u)) {
      throw new PortraitError(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, 'subscribeUserProfile: userIDList must be an array of UserIDs');
    }
    try {
      return ok({ userIDList: await this.session.subscribe(list) });
    } catch (e) {
      throw asPortraitError(e);
    }
  }

  /** Stops live updates of these users (the own profile stays subscribed). */
  async unsubscribeUserProfile(options: { userIDList: string[] }): Promise<ChatResponse<{}>> {
    const list = options?.userIDList;
    if (!Array.isArray(list)) {
      throw new PortraitError(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, 'unsubscribeUserProfile: userIDList must be an array');
    }
    try {
      this.session.unsubscribe(list);
      return ok({});
    } catch (e) {
      throw asPortraitError(e);
    }
  }

  /** Native-SDK names for the same calls. */
  subscribeUserInfo(options: { userIDList: string[] }) {
    return this.subscribeUserProfile(options);
  }
  unsubscribeUserInfo(options: { userIDList: string[] }) {
    return this.unsubscribeUserProfile(options);
  }

  /** Current network state: TYPES.NET_STATE_*. */
  getNetState(): NetState {
    return this.session.getNetState();
  }

  /** Accepted for compatibility; logging goes to the console only on handler errors. */
  setLogLevel(_level: number): void {}
}

/** The vendor's name for the instance type (`import { ChatSDK } from '@tencentcloud/chat'`). */
export type ChatSDK = ChatInstance;

/**
 * The `TencentCloudChat` default export: a namespace, as in the vendor's typings, so that
 * `TencentCloudChat.TYPES` and `TencentCloudChat.EVENT` are types as well as values.
 */
namespace TencentCloudChat {
  /** Creates an SDK instance: `{SDKAppID, server}` plus optional session tuning. */
  export function create(options: CreateOptions): ChatSDK {
    return new ChatInstance(options);
  }
  export import TYPES = C.TYPES;
  export import EVENT = C.EVENT;
  export const ERROR_CODE = C.ERROR_CODE;
  export const VERSION = '0.1.0';
}

export default TencentCloudChat;
export { TencentCloudChat };
