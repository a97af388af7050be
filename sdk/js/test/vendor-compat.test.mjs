// Behaviour that the vendors' typings promise (issue #16): TencentCloudChat getLoginUser /
// getServerTime / login's result / proxyServer; NIM getInstance one instance per account,
// setOptions, getMyInfo, getUsersFromDB, logout, init options, synchronous parameter errors.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import TencentCloudChat, { NIM } from '../dist/index.js';
import { startServer, userSig, SDKAPPID, sleep } from './helpers/server.mjs';
import { createChat, createNim, loginReady, cb, waitFor } from './helpers/sdk.mjs';

let srv;
const cleanup = [];
before(async () => {
  srv = await startServer();
});
after(async () => {
  for (const f of cleanup) await f();
  await srv?.stop();
});

// ------------------------------------------------------------------ TencentCloudChat

test('login resolves with the vendor\'s data fields; getLoginUser follows login and logout', async () => {
  await srv.importAccounts(['v_ann']);
  const chat = createChat(srv.base);
  cleanup.push(() => chat.destroy());
  assert.equal(chat.getLoginUser(), '');
  const r = await loginReady(chat, 'v_ann');
  assert.deepEqual(r, { code: 0, data: { repeatLogin: false, actionStatus: 'OK', errorCode: 0, errorInfo: '' } });
  assert.equal(chat.getLoginUser(), 'v_ann');
  const again = await chat.login({ userID: 'v_ann', userSig: userSig('v_ann') });
  assert.equal(again.data.repeatLogin, true);
  assert.equal(again.data.actionStatus, 'OK');
  assert.ok(again.data.errorInfo.length > 0);
  await chat.logout();
  assert.equal(chat.getLoginUser(), '');
});

test('getServerTime follows the server\'s clock (Date header), not the local one', async () => {
  await srv.importAccounts(['v_clock']);
  const SKEW = 3600 * 1000;
  // The real server's answers, with their Date header read as if the server's clock were an hour ahead.
  const skewed = async (url, init) => {
    const res = await fetch(url, init);
    const date = res.headers.get('date');
    assert.ok(date, 'the server sends a Date header');
    return {
      status: res.status,
      text: () => res.text(),
      headers: { get: (n) => (n.toLowerCase() === 'date' ? new Date(Date.parse(date) + SKEW).toUTCString() : res.headers.get(n)) },
    };
  };
  const chat = createChat(srv.base, { fetch: skewed });
  cleanup.push(() => chat.destroy());
  await loginReady(chat, 'v_clock');
  const t = chat.getServerTime();
  assert.ok(Number.isInteger(t));
  const expected = (Date.now() + SKEW) / 1000;
  assert.ok(Math.abs(t - expected) <= 2, `${t} within 2 s of ${expected}`);

  const plain = createChat(srv.base);
  cleanup.push(() => plain.destroy());
  await loginReady(plain, 'v_clock');
  assert.ok(Math.abs(plain.getServerTime() - Date.now() / 1000) <= 2);
});

test('create without `server`: the vendor\'s proxyServer is used, else a clear error (no page origin in Node)', async () => {
  await srv.importAccounts(['v_proxy']);
  const chat = TencentCloudChat.create({ SDKAppID: SDKAPPID, proxyServer: srv.base.replace(/^http/, 'ws'), WebSocket, storage: null });
  cleanup.push(() => chat.destroy());
  await loginReady(chat, 'v_proxy');
  assert.equal((await chat.getMyProfile()).data.userID, 'v_proxy');
  assert.throws(() => TencentCloudChat.create({ SDKAppID: SDKAPPID }), /no server: pass options\.server/);
});

test('TYPES and EVENT keep the vendor\'s values (enums)', () => {
  assert.equal(TencentCloudChat.TYPES.GENDER_MALE, 'Gender_Type_Male');
  assert.equal(TencentCloudChat.EVENT.PROFILE_UPDATED, 'onProfileUpdated');
  assert.ok(Object.isFrozen(TencentCloudChat.TYPES));
  assert.equal(Object.keys(TencentCloudChat.TYPES).length, 15);
});

// ------------------------------------------------------------------ NIM

/** Callback recorder + a promise of the first onsyncdone. */
function recorder() {
  const calls = { connect: [], disconnect: [], myinfo: [], users: [], updateuser: [], sync: 0 };
  let synced;
  const firstSync = new Promise((r) => (synced = r));
  const opts = {
    onconnect: (i) => calls.connect.push(i),
    ondisconnect: (i) => calls.disconnect.push(i),
    onmyinfo: (u) => calls.myinfo.push(u),
    onusers: (u) => calls.users.push(u),
    onupdateuser: (u) => calls.updateuser.push(u),
    onsyncdone: () => {
      calls.sync++;
      synced();
    },
  };
  return { calls, opts, firstSync };
}

test('NIM.getInstance returns one instance per account: no second connection, no doubled callbacks', async () => {
  await srv.importAccounts(['n_one', { UserID: 'n_peer', Nick: 'Peer' }]);
  const a = recorder();
  const nim = createNim(srv.base, { account: 'n_one', ...a.opts });
  cleanup.push(() => nim.destroy());
  await a.firstSync;
  const b = recorder();
  const same = createNim(srv.base, { account: 'n_one', ...b.opts });
  assert.equal(same, nim);
  assert.equal(nim.session.stats.connects, 1);
  const [, users] = await cb((done) => nim.getUsers({ accounts: ['n_peer'], done }));
  assert.equal(users[0].nick, 'Peer');
  await srv.set('n_peer', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'Peer 2' }]);
  await waitFor(() => b.calls.updateuser.length === 1, 5000, 'onupdateuser of the new options');
  await sleep(300);
  assert.equal(a.calls.updateuser.length, 0, 'the replaced callbacks are not called');
  assert.equal(b.calls.updateuser.length, 1, 'called once');
  assert.equal(nim.session.stats.connects, 1);

  // After disconnect(), getInstance of the account connects the same instance again.
  nim.disconnect({});
  assert.deepEqual(b.calls.disconnect.map((d) => d.code), ['manuallyDisconnect']);
  const c = recorder();
  assert.equal(createNim(srv.base, { account: 'n_one', ...c.opts }), nim);
  await c.firstSync;
  assert.equal(c.calls.connect.length, 1);
  assert.equal(c.calls.connect[0].connectionId, 'n_one-2');
  // destroy() releases it: the next getInstance is a new instance.
  nim.destroy();
  const fresh = createNim(srv.base, { account: 'n_one' });
  cleanup.push(() => fresh.destroy());
  assert.notEqual(fresh, nim);
});

test('NIM getMyInfo, getUsersFromDB (no request), logout, createTime', async () => {
  await srv.importAccounts([{ UserID: 'n_me', Nick: 'Me' }, { UserID: 'n_bob', Nick: 'Bob' }]);
  const r = recorder();
  let requests = 0;
  const nim = createNim(srv.base, {
    account: 'n_me', ...r.opts,
    fetch: (url, init) => {
      requests++;
      return fetch(url, init);
    },
  });
  cleanup.push(() => nim.destroy());
  await r.firstSync;
  const [e1, me] = await cb((done) => nim.getMyInfo({ done }));
  assert.equal(e1, null);
  assert.equal(me.account, 'n_me');
  assert.equal(me.nick, 'Me');
  assert.equal(me.createTime, 0);
  await cb((done) => nim.getUsers({ accounts: ['n_bob'], done }));
  const before = requests;
  const [e2, held] = await cb((done) => nim.getUsersFromDB({ done }));
  assert.equal(e2, null);
  assert.deepEqual(held.map((u) => [u.account, u.nick]).sort(), [['n_bob', 'Bob'], ['n_me', 'Me']]);
  const [, some] = await cb((done) => nim.getUsersFromDB({ accountIds: ['n_bob', 'n_nobody'], done }));
  assert.deepEqual(some.map((u) => u.account), ['n_bob']);
  assert.equal(requests, before, 'getUsersFromDB makes no request');
  nim.logout();
  assert.deepEqual(r.calls.disconnect.map((d) => d.code), ['manuallyDisconnect']);
  assert.equal(nim.session.isLoggedIn(), false);
});

test('NIM init options: syncFriendUsers false skips onusers; db false persists nothing; debug / logLevel / authType accepted', async () => {
  await srv.importAccounts(['n_opts', 'n_friend']);
  const storage = new Map();
  const store = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v), removeItem: (k) => storage.delete(k) };
  const r = recorder();
  const logs = [];
  const origInfo = console.info;
  console.info = (...a) => logs.push(a.join(' '));
  try {
    const nim = NIM.getInstance({
      appKey: String(SDKAPPID), server: srv.base, WebSocket, account: 'n_opts', token: userSig('n_opts'),
      storage: store, db: false, syncFriendUsers: false, syncAccounts: ['n_friend'], debug: true, logLevel: 'info', authType: 0,
      ...r.opts,
    });
    cleanup.push(() => nim.destroy());
    await r.firstSync;
    await sleep(200);
    nim.disconnect({});
  } finally {
    console.info = origInfo;
  }
  assert.equal(r.calls.users.length, 0, 'no onusers with syncFriendUsers: false');
  assert.equal(storage.size, 0, 'db: false keeps nothing locally');
  assert.ok(logs.some((l) => l.includes('[portrait nim n_opts]')), 'logLevel info logs connection events');
});

test('NIM updateMyInfo: bad email / tel / birth / gender throw at once (414); antiSpamBusinessId is accepted', async () => {
  await srv.importAccounts(['n_check']);
  const r = recorder();
  const nim = createNim(srv.base, { account: 'n_check', ...r.opts });
  cleanup.push(() => nim.destroy());
  await r.firstSync;
  const never = () => assert.fail('done must not be called');
  assert.throws(() => nim.updateMyInfo({ email: 'no-at-sign', done: never }), { code: 414 });
  assert.throws(() => nim.updateMyInfo({ tel: 'call me', done: never }), { code: 414 });
  assert.throws(() => nim.updateMyInfo({ birth: '1990-13-01', done: never }), { code: 414 });
  assert.throws(() => nim.updateMyInfo({ birth: '19900101', done: never }), { code: 414 });
  assert.throws(() => nim.updateMyInfo({ gender: 'Gender_Type_Male', done: never }), { code: 414 });
  const [err, user] = await cb((done) => nim.updateMyInfo({
    email: 'a@b', tel: '+86-(10)-1', birth: '1990-02-03', antiSpamBusinessId: 'biz', done,
  }));
  assert.equal(err, null);
  assert.deepEqual([user.email, user.tel, user.birth], ['a@b', '+86-(10)-1', '1990-02-03']);
  // '' clears a field, as with the vendor.
  const [e2, cleared] = await cb((done) => nim.updateMyInfo({ email: '', done }));
  assert.equal(e2, null);
  assert.equal(cleared.email, '');
});
