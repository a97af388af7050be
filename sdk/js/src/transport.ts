/**
 * The session's wire, below its cache: the `/v1` HTTP call (auth query, timeout, the envelope's
 * `ErrorCode` as a PortraitError, the server clock from the `Date` header) and the parsing of
 * WebSocket messages into protocol frames. No session state, no cache: `core.ts` decides what to
 * call and what a frame does.
 */
import type { FetchLike } from './types.js';
import { ERROR_CODE } from './constants.js';
import { PortraitError } from './errors.js';
import type { ServerFrame } from './wire.js';

function randomU32(): number {
  return Math.floor(Math.random() * 4294967295);
}

const FRAME_TYPES: ReadonlySet<string> = new Set<ServerFrame['type']>([
  'ready', 'profile', 'synced', 'subscribed', 'unsubscribed', 'pong', 'error',
]);

/**
 * A WebSocket text message as a frame of the protocol (`wire.ts`, generated from the server's
 * types), or null for one that is not JSON or not of a known `type` (ignored, as before).
 */
export function parseFrame(text: string): ServerFrame | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const type = (v as { type?: unknown }).type;
  return typeof type === 'string' && FRAME_TYPES.has(type) ? (v as ServerFrame) : null;
}

/** `/v1` HTTP calls to one server for one app, and the server's clock as they show it. */
export class HttpTransport {
  /** Server clock minus local clock (ms), from the `Date` header of the last answer; 0 until one. */
  private serverClockOffsetMs = 0;

  constructor(
    private readonly server: string,
    private readonly sdkAppID: number,
    private readonly fetchImpl: FetchLike,
    private readonly requestTimeoutMs: number,
  ) {}

  /** The query that signs a call (HTTP or the WebSocket URL) in as `userID`. */
  authQuery(userID: string, userSig: string): string {
    const q = new URLSearchParams({
      sdkappid: String(this.sdkAppID),
      identifier: userID,
      usersig: userSig,
      random: String(randomU32()),
      contenttype: 'json',
    });
    return q.toString();
  }

  /**
   * POSTs a `/v1` call signed in as `userID` and returns the answer envelope; rejects with
   * PortraitError for a transport failure (2800/2801) or a non-zero `ErrorCode` (the server's
   * code as is).
   */
  async post(path: string, body: unknown, userID: string, userSig: string): Promise<any> {
    const url = `${this.server}${path}?${this.authQuery(userID, userSig)}`;
    const ac = typeof AbortController === 'function' ? new AbortController() : null;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac?.abort();
    }, this.requestTimeoutMs);
    let text: string;
    let status: number;
    const sentAt = Date.now();
    try {
      // text/plain keeps this a "simple" CORS request (no preflight); the server accepts any type.
      const res = await this.fetchImpl(url, {
        method: 'POST',
        body: JSON.stringify(body ?? {}),
        headers: { 'content-type': 'text/plain;charset=UTF-8' },
        signal: ac?.signal,
      });
      status = res.status;
      this.noteServerDate(res.headers?.get?.('date'), sentAt);
      text = await res.text();
    } catch (e) {
      if (timedOut) throw new PortraitError(ERROR_CODE.NETWORK_TIMEOUT, `request timed out: ${path}`);
      throw new PortraitError(ERROR_CODE.NETWORK_ERROR, `network error: ${(e as Error)?.message ?? e}`);
    } finally {
      clearTimeout(timer);
    }
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      throw new PortraitError(ERROR_CODE.NETWORK_ERROR, `HTTP ${status}: answer is not JSON`);
    }
    if (typeof json !== 'object' || json === null || typeof json.ErrorCode !== 'number') {
      throw new PortraitError(ERROR_CODE.NETWORK_ERROR, `HTTP ${status}: unexpected answer`);
    }
    if (json.ErrorCode !== 0) {
      throw new PortraitError(json.ErrorCode, json.ErrorInfo || `error ${json.ErrorCode}`, json);
    }
    return json;
  }

  private noteServerDate(date: string | null | undefined, sentAt: number): void {
    const t = date ? Date.parse(date) : NaN;
    if (!Number.isFinite(t)) return;
    // The header has second precision: its second began somewhere in the round trip.
    this.serverClockOffsetMs = t + 500 - Math.round((sentAt + Date.now()) / 2);
  }

  /** The server's clock (Unix ms): the local clock corrected by the last answer's `Date` header. */
  serverNow(): number {
    return Date.now() + this.serverClockOffsetMs;
  }
}
