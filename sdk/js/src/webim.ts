/**
 * Legacy webim-style calls (the older Tencent web SDK):
 * `webim.setProfilePortrait(options, cbOk, cbErr)` and `webim.getProfilePortrait(options, cbOk, cbErr)`
 * with the vendor's `ProfileItem` / `To_Account` + `TagList` options and response objects, acting
 * as the signed-in user. Sign in with `webim.login(loginInfo, listeners, options, cbOk, cbErr)`, or
 * share the session of a TencentCloudChat / NIM instance: `createWebim({chat})`.
 */
import { ERROR_CODE } from './constants.js';
import { PortraitSession, ProfileChange, SESSION_EVENT, SessionOptions, NetState } from './core.js';
import { PortraitError } from './errors.js';

/** The vendor's response envelope. */
export interface WebimResponse {
  ActionStatus: 'OK' | 'FAIL';
  ErrorCode: number;
  ErrorInfo: string;
  ErrorDisplay?: string;
  [k: string]: unknown;
}

export type WebimOk = (resp: WebimResponse) => void;
export type WebimErr = (err: WebimResponse) => void;

/** `webim.CONNECTION_STATUS` (values of the legacy SDK). */
export const CONNECTION_STATUS = Object.freeze({ INIT: -1, ON: 0, RECONNECT: 1, OFF: 9999 });

/** Legacy `login` listeners this SDK calls. */
export interface WebimListeners {
  /** `{ErrorCode: CONNECTION_STATUS.*, ErrorInfo}` on connection changes. */
  onConnNotify?: (resp: { ActionStatus: string; ErrorCode: number; ErrorInfo: string }) => void;
  /**
   * Profile notices by type; type 1 = "my or a subscribed user's profile changed", called with
   * `{Type: 1, Profile_Account, ProfileList: [{Tag, Value}]}` (the items of the change).
   */
  onProfileSystemNotifys?: Record<number | string, (notify: {
    Type: number;
    Profile_Account: string;
    ProfileList: Array<{ Tag: string; Value: string | number }>;
  }) => void>;
  /** Kicked off (REST kick) or signature expired. */
  onKickedEventCall?: () => void;
}

/** Legacy `loginInfo`. */
export interface WebimLoginInfo {
  sdkAppID: number | string;
  identifier: string;
  userSig: string;
  identifierNick?: string;
  /** Portrait: base URL of the server (or pass `server` to createWebim). */
  server?: string;
}

function failOf(e: unknown): WebimResponse {
  if (e instanceof PortraitError) {
    const r = e.response as WebimResponse | undefined;
    if (r && typeof r === 'object' && typeof r.ErrorCode === 'number') return { ...r, ActionStatus: 'FAIL' };
    return { ActionStatus: 'FAIL', ErrorCode: e.code, ErrorInfo: e.message, ErrorDisplay: '' };
  }
  return { ActionStatus: 'FAIL', ErrorCode: ERROR_CODE.NETWORK_ERROR, ErrorInfo: String((e as Error)?.message ?? e), ErrorDisplay: '' };
}

function call<T>(p: Promise<T>, ok?: (r: T) => void, err?: WebimErr): void {
  p.then(
    (r) => {
      if (typeof ok === 'function') ok(r);
    },
    (e) => {
      if (typeof err === 'function') err(failOf(e));
    },
  );
}

function withoutPortraitFields(resp: any): WebimResponse {
  const { Version: _v, ...rest } = resp ?? {};
  return rest as WebimResponse;
}

/** A legacy `webim` object. */
export class Webim {
  readonly CONNECTION_STATUS = CONNECTION_STATUS;
  /** Helpers the legacy demos call. */
  readonly Tool = {
    trimStr(s: string): string {
      return String(s ?? '').replace(/^\s+|\s+$/g, '');
    },
    formatText2Html(s: string): string {
      return String(s ?? '')
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;')
        .replace(/'/g, '&#39;')
        .replace(/\n/g, '<br/>');
    },
  };
  private session: PortraitSession | null;
  private readonly defaults: Partial<SessionOptions>;
  private listeners: WebimListeners = {};
  private unhook: (() => void) | null = null;

  constructor(opts: { session?: PortraitSession; server?: string } & Partial<SessionOptions> = {}) {
    this.session = opts.session ?? null;
    const { session: _s, ...rest } = opts;
    this.defaults = rest;
  }

  /** `webim.login(loginInfo, listeners, options, cbOk, cbErr)`. */
  login(loginInfo: WebimLoginInfo, listeners?: WebimListeners, options?: Partial<SessionOptions>,
    cbOk?: WebimOk, cbErr?: WebimErr): void {
    const server = loginInfo?.server ?? options?.server ?? this.defaults.server;
    if (!loginInfo || !server) {
      cbErr?.({ ActionStatus: 'FAIL', ErrorCode: ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, ErrorInfo: 'loginInfo (sdkAppID, identifier, userSig) and server are required' });
      return;
    }
    if (!this.session) {
      this.session = new PortraitSession({ ...this.defaults, ...(options ?? {}), server, SDKAppID: loginInfo.sdkAppID });
    }
    this.listeners = listeners ?? {};
    this.hook();
    call(
      this.session.login(loginInfo.identifier, loginInfo.userSig).then(() => ({
        ActionStatus: 'OK' as const, ErrorCode: 0, ErrorInfo: '',
      })),
      cbOk,
      cbErr,
    );
  }

  /** `webim.logout(cbOk, cbErr)`. */
  logout(cbOk?: WebimOk, cbErr?: WebimErr): void {
    void cbErr;
    this.session?.logout();
    cbOk?.({ ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '' });
  }

  private hook(): void {
    if (this.unhook || !this.session) return;
    const s = this.session;
    const onNet = (e: { state: NetState }) => {
      const code = e.state === 'connected' ? CONNECTION_STATUS.ON
        : e.state === 'connecting' ? CONNECTION_STATUS.RECONNECT : CONNECTION_STATUS.OFF;
      this.listeners.onConnNotify?.({ ActionStatus: 'OK', ErrorCode: code, ErrorInfo: e.state });
    };
    const onProfile = (c: ProfileChange) => {
      if (c.kind === 'delete') return;
      const fn = this.listeners.onProfileSystemNotifys?.[1];
      fn?.({ Type: 1, Profile_Account: c.account, ProfileList: c.items.map((i) => ({ Tag: i.Tag, Value: i.Value })) });
    };
    const onKicked = () => this.listeners.onKickedEventCall?.();
    s.on(SESSION_EVENT.NET, onNet);
    s.on(SESSION_EVENT.PROFILE, onProfile);
    s.on(SESSION_EVENT.KICKED, onKicked);
    this.unhook = () => {
      s.off(SESSION_EVENT.NET, onNet);
      s.off(SESSION_EVENT.PROFILE, onProfile);
      s.off(SESSION_EVENT.KICKED, onKicked);
    };
  }

  /**
   * Sets the signed-in user's profile: `options.ProfileItem` = `[{Tag, Value}]`. `cbOk(resp)` gets
   * `{ActionStatus: 'OK', ErrorCode: 0, ErrorInfo, ErrorDisplay}`; `cbErr(err)` the same envelope
   * with the error (`err.ErrorInfo`).
   */
  setProfilePortrait(options: { ProfileItem: Array<{ Tag: string; Value: string | number }> },
    cbOk?: WebimOk, cbErr?: WebimErr): void {
    const s = this.session;
    if (!s || !s.isLoggedIn()) {
      cbErr?.({ ActionStatus: 'FAIL', ErrorCode: ERROR_CODE.SDK_IS_NOT_READY, ErrorInfo: 'not logged in', ErrorDisplay: '' });
      return;
    }
    if (typeof options !== 'object' || options === null) {
      cbErr?.({ ActionStatus: 'FAIL', ErrorCode: 40001, ErrorInfo: 'Err_Profile_Comm_Decode_Fail: options must be an object', ErrorDisplay: '' });
      return;
    }
    call(s.rawUpdate({ ProfileItem: options.ProfileItem }).then(withoutPortraitFields), cbOk, cbErr);
  }

  /**
   * Reads profiles: `options` = `{To_Account: [...], TagList: [...]}`. `cbOk(resp)` gets the
   * vendor's answer: `UserProfileItem` (per account `To_Account, ProfileItem, ResultCode,
   * ResultInfo`), `Fail_Account`, `Invalid_Account`, and the envelope.
   */
  getProfilePortrait(options: { To_Account: string[]; TagList?: string[] }, cbOk?: WebimOk, cbErr?: WebimErr): void {
    const s = this.session;
    if (!s || !s.isLoggedIn()) {
      cbErr?.({ ActionStatus: 'FAIL', ErrorCode: ERROR_CODE.SDK_IS_NOT_READY, ErrorInfo: 'not logged in', ErrorDisplay: '' });
      return;
    }
    if (typeof options !== 'object' || options === null) {
      cbErr?.({ ActionStatus: 'FAIL', ErrorCode: 40001, ErrorInfo: 'Err_Profile_Comm_Decode_Fail: options must be an object', ErrorDisplay: '' });
      return;
    }
    const body: Record<string, unknown> = { To_Account: options.To_Account };
    if (options.TagList !== undefined) body.TagList = options.TagList;
    call(
      s.rawGet(body).then((resp: any) => {
        const items = Array.isArray(resp.UserProfileItem) ? resp.UserProfileItem : [];
        return {
          ...resp,
          UserProfileItem: items.map((it: any) => {
            const { Version: _v, UpdatedAtMs: _t, ...rest } = it ?? {};
            return rest;
          }),
          Fail_Account: Array.isArray(resp.Fail_Account) ? resp.Fail_Account : [],
          Invalid_Account: Array.isArray(resp.Invalid_Account) ? resp.Invalid_Account : [],
        } as WebimResponse;
      }),
      cbOk,
      cbErr,
    );
  }
}

/**
 * A legacy `webim` object: standalone (`{server}`, then `webim.login(...)`) or sharing the session
 * of a signed-in TencentCloudChat / NIM instance (`{chat}` / `{nim}`).
 */
export function createWebim(opts: { chat?: { session: PortraitSession }; nim?: { session: PortraitSession }; server?: string } & Partial<SessionOptions> = {}): Webim {
  const session = opts.chat?.session ?? opts.nim?.session;
  const { chat: _c, nim: _n, ...rest } = opts;
  return new Webim({ ...rest, session });
}
