// SDK helpers for the Node tests: the `ws` package as the WebSocket, fast reconnects, recorders.
import WebSocket from 'ws';
import TencentCloudChat, { EVENT, NIM } from '../../dist/index.js';
import { SDKAPPID, userSig, waitFor } from './server.mjs';

/** A TencentCloudChat instance against `server` (no persistence unless `storage` is given). */
export function createChat(server, opts = {}) {
  return TencentCloudChat.create({
    SDKAppID: SDKAPPID,
    server,
    WebSocket,
    storage: null,
    reconnectBaseMs: 50,
    reconnectMaxMs: 400,
    ...opts,
  });
}

/** Records every emission of `event` on `chat` (handler gets {name, data}). */
export function record(chat, event) {
  const list = [];
  chat.on(event, (e) => list.push(e));
  return list;
}

/** Logs `user` in and waits for SDK_READY. */
export async function loginReady(chat, user, sig = userSig(user)) {
  const ready = new Promise((resolve) => chat.on(EVENT.SDK_READY, resolve));
  const r = await chat.login({ userID: user, userSig: sig });
  await ready;
  return r;
}

/** The `code` a promise rejects with (fails if it resolves). */
export async function rejectCode(p) {
  try {
    await p;
  } catch (e) {
    return e.code;
  }
  throw new Error('expected a rejection');
}

/** A NIM instance with the ws package; resolves once onsyncdone fired. */
export function createNim(server, opts) {
  return NIM.getInstance({
    appKey: SDKAPPID,
    server,
    WebSocket,
    storage: null,
    reconnectBaseMs: 50,
    reconnectMaxMs: 400,
    token: userSig(opts.account),
    ...opts,
  });
}

/** `done`-style call → promise of [error, result]. */
export function cb(fn) {
  return new Promise((resolve) => fn((err, res) => resolve([err, res])));
}

export { waitFor };
