// The wire contract the SDK is built on (docs/client-api.md), checked frame by frame against a
// real server with a raw WebSocket — so that a server change that would break the SDK shows up here
// with the exact difference.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, userSig, SDKAPPID, ADMIN, sleep } from './helpers/server.mjs';

let srv;
before(async () => {
  srv = await startServer({ push: { max_subscriptions: 4, max_connections_per_user: 3, idle_timeout_ms: 1500, ping_interval_ms: 500 } });
  await srv.importAccounts([{ UserID: 'w_a', Nick: 'A' }, 'w_b', 'w_c', 'w_d', 'w_e', 'w_f', 'w_many', 'w_del', 'w_kick', 'w_idle']);
});
after(async () => srv?.stop());

const q = (user, sig = userSig(user)) =>
  new URLSearchParams({ sdkappid: String(SDKAPPID), identifier: user, usersig: sig }).toString();

/** Opens /v1/ws and collects frames; `next(pred)` waits for the next matching frame. */
function connect(user, extra = '', sig) {
  const ws = new WebSocket(`${srv.base.replace('http', 'ws')}/v1/ws?${q(user, sig)}${extra}`, { autoPong: true });
  const frames = [];
  const waiters = [];
  let closed = null;
  ws.on('message', (d) => {
    const f = JSON.parse(String(d));
    frames.push(f);
    for (const w of [...waiters]) if (w.pred(f)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(f); }
  });
  const closedP = new Promise((r) => ws.on('close', (code, reason) => { closed = { code, reason: String(reason) }; r(closed); }));
  let seen = 0;
  return {
    ws, frames,
    get closed() { return closed; },
    closedP,
    send: (o) => ws.send(JSON.stringify(o)),
    next(pred = () => true, ms = 5000) {
      for (let i = seen; i < frames.length; i++) if (pred(frames[i])) { seen = i + 1; return Promise.resolve(frames[i]); }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching frame in ${ms} ms; got ${JSON.stringify(frames)}`)), ms);
        waiters.push({ pred, resolve: (f) => { clearTimeout(t); seen = frames.indexOf(f) + 1; resolve(f); } });
      });
    },
    close: () => ws.close(),
  };
}

async function post(path, user, body) {
  const r = await fetch(`${srv.base}${path}?${q(user)}&random=1&contenttype=json`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200);
  return r.json();
}

test('HTTP: get_my_profile / get_user_profile / update_my_profile answers and codes', async () => {
  const mine = await post('/v1/profile/get_my_profile', 'w_a', {});
  assert.equal(mine.ErrorCode, 0);
  assert.equal(mine.UserProfileItem.length, 1);
  const it = mine.UserProfileItem[0];
  assert.equal(it.To_Account, 'w_a');
  assert.equal(typeof it.Version, 'number');
  assert.equal(typeof it.UpdatedAtMs, 'number');
  assert.equal(it.ProfileItem.find((p) => p.Tag === 'Tag_Profile_IM_Nick').Value, 'A');
  assert.equal(it.ProfileItem.length, 12, 'every standard field, none of the unset custom ones');

  const upd = await post('/v1/profile/update_my_profile', 'w_a', { ProfileItem: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'A2' }] });
  assert.equal(upd.ErrorCode, 0);
  assert.ok(upd.Version > it.Version);
  const stale = await post('/v1/profile/update_my_profile', 'w_a', { ProfileItem: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'A3' }], ExpectedVersion: it.Version });
  assert.equal(stale.ErrorCode, 49001);
  assert.ok(stale.ErrorInfo.includes(String(upd.Version)), `ErrorInfo names the current version: ${stale.ErrorInfo}`);

  const many = await post('/v1/profile/get_user_profile', 'w_a', { To_Account: Array.from({ length: 101 }, (_, i) => `x${i}`) });
  assert.equal(many.ErrorCode, 40001);
  assert.equal((await post('/v1/profile/get_user_profile', 'w_a', { To_Account: [] })).ErrorCode, 40002);
  assert.equal((await post('/v1/profile/get_user_profile', 'w_a', {})).ErrorCode, 40002);
  assert.equal((await post('/v1/profile/get_user_profile', 'w_a', { To_Account: ['w_a'], TagList: ['Tag_Profile_Custom_Secret'] })).ErrorCode, 40007);
  const two = await post('/v1/profile/get_user_profile', 'w_a', { To_Account: ['w_b', 'nobody'] });
  assert.deepEqual(two.UserProfileItem.map((u) => [u.To_Account, u.ResultCode]), [['w_b', 0], ['nobody', 40003]]);
  assert.deepEqual(two.Fail_Account, ['nobody']);
  // An admin is an ordinary account for the client API.
  await srv.importAccounts([ADMIN]);
  assert.equal((await post('/v1/profile/get_my_profile', ADMIN, {})).ErrorCode, 0);
  // Auth codes.
  const bad = await fetch(`${srv.base}/v1/profile/get_my_profile?${q('w_a', userSig('w_b'))}`, { method: 'POST', body: '{}' }).then((r) => r.json());
  assert.equal(bad.ErrorCode, 70013);
  const gone = await post('/v1/profile/get_my_profile', 'never_imported', {});
  assert.equal(gone.ErrorCode, 70107);
});

test('WS: refused handshake = error frame + close 4001', async () => {
  const c = connect('w_a', '', 'garbage');
  const f = await c.next();
  assert.equal(f.type, 'error');
  assert.equal(f.code, 70003);
  assert.equal((await c.closedP).code, 4001);
  const d = connect('never_imported');
  assert.equal((await d.next()).code, 70107);
  assert.equal((await d.closedP).code, 4001);
});

test('WS: ready, profile frames with cursor, since catch-up then synced, subscribe/unsubscribe/ping', async () => {
  const first = connect('w_b');
  const v0 = (await first.next()).version; // the app's head now
  first.close();
  await srv.set('w_c', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'C1' }]);
  await srv.set('w_b', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'B1' }]);
  const c = connect('w_b', `&since=${v0}&accounts=w_c`);
  const ready = await c.next();
  assert.equal(ready.type, 'ready');
  assert.equal(ready.user, 'w_b');
  assert.equal(typeof ready.version, 'number');
  assert.equal(ready.max_subscriptions, 4);
  const e1 = await c.next();
  const e2 = await c.next();
  // An admin's change shows the marker, never which admin account.
  assert.deepEqual([e1.type, e1.account, e1.kind, e1.operator], ['profile', 'w_c', 'set', 'admin']);
  assert.ok(!JSON.stringify(e1).includes(ADMIN), JSON.stringify(e1));
  assert.deepEqual(e1.items, [{ Tag: 'Tag_Profile_IM_Nick', Value: 'C1' }]);
  assert.equal(typeof e1.time_ms, 'number');
  assert.equal(e1.cursor, e1.version);
  assert.deepEqual([e2.account, e2.items[0].Value], ['w_b', 'B1']);
  const synced = await c.next();
  assert.equal(synced.type, 'synced');
  assert.equal(synced.cursor, e2.version);

  c.send({ op: 'subscribe', accounts: ['w_d'] });
  assert.deepEqual(await c.next(), { type: 'subscribed', accounts: ['w_d'], count: 3 });
  // subscribe with since: subscribed, the account's changes after since, then synced.
  await srv.set('w_e', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'E1' }]);
  c.send({ op: 'subscribe', accounts: ['w_e'], since: v0 });
  assert.equal((await c.next()).type, 'subscribed');
  const e = await c.next();
  assert.deepEqual([e.type, e.account, e.items[0].Value], ['profile', 'w_e', 'E1']);
  assert.equal((await c.next()).type, 'synced');
  // Over max_subscriptions (4, own included): refused whole.
  c.send({ op: 'subscribe', accounts: ['w_f'] });
  const refused = await c.next();
  assert.deepEqual([refused.type, refused.code, refused.op], ['error', 49002, 'subscribe']);
  c.send({ op: 'unsubscribe', accounts: ['w_d', 'w_b'] });
  const un = await c.next();
  assert.deepEqual([un.type, un.accounts, un.count], ['unsubscribed', ['w_d'], 3]);
  c.send({ op: 'ping' });
  assert.deepEqual(await c.next(), { type: 'pong' });
  c.send({ op: 'dance' });
  const badOp = await c.next();
  assert.deepEqual([badOp.type, badOp.code], ['error', 49004]);
  // Live: a user change by another user is pushed with operator = that user.
  await post('/v1/profile/update_my_profile', 'w_c', { ProfileItem: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'C2' }] });
  const live = await c.next();
  assert.deepEqual([live.account, live.operator, live.items[0].Value], ['w_c', 'w_c', 'C2']);
  // No event for the unsubscribed account.
  await srv.set('w_d', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'D1' }]);
  await srv.set('w_b', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'B2' }]);
  const nextEv = await c.next((f) => f.type === 'profile');
  assert.equal(nextEv.account, 'w_b');
  c.close();
});

test('WS: admin-only fields never pushed; deletes are events; re-import is an import event', async () => {
  const c = connect('w_a', '&accounts=w_del');
  await c.next((f) => f.type === 'ready');
  await srv.set('w_del', [{ Tag: 'Tag_Profile_Custom_Secret', Value: 's' }, { Tag: 'Tag_Profile_IM_Level', Value: 2 }]);
  const ev = await c.next((f) => f.type === 'profile');
  assert.deepEqual(ev.items, [{ Tag: 'Tag_Profile_IM_Level', Value: 2 }]);
  await srv.remove(['w_del']);
  const del = await c.next((f) => f.type === 'profile');
  assert.equal(del.kind, 'delete');
  assert.ok(!del.items || del.items.length === 0);
  await srv.importAccounts([{ UserID: 'w_del', Nick: 'Back' }]);
  const imp = await c.next((f) => f.type === 'profile');
  assert.equal(imp.kind, 'import');
  assert.deepEqual(imp.items.find((i) => i.Tag === 'Tag_Profile_IM_Nick'), { Tag: 'Tag_Profile_IM_Nick', Value: 'Back' });
  c.close();
});

test('WS: kick → error 70001 + close 4002; too many connections → 49003 + 4003; idle → 4000', async () => {
  const k = connect('w_kick');
  await k.next((f) => f.type === 'ready');
  await srv.kick('w_kick');
  const err = await k.next((f) => f.type === 'error');
  assert.equal(err.code, 70001);
  assert.equal((await k.closedP).code, 4002);

  const conns = [connect('w_many'), connect('w_many'), connect('w_many')];
  for (const c of conns) await c.next((f) => f.type === 'ready');
  const extra = connect('w_many');
  const e = await extra.next();
  assert.deepEqual([e.type, e.code], ['error', 49003]);
  assert.equal((await extra.closedP).code, 4003);
  for (const c of conns) c.close();

  // A client that answers nothing (autoPong off) is closed after idle_timeout_ms (1500 here).
  const idle = new WebSocket(`${srv.base.replace('http', 'ws')}/v1/ws?${q('w_idle')}`, { autoPong: false });
  const code = await new Promise((r) => idle.on('close', (c) => r(c)));
  assert.equal(code, 4000);
  await sleep(10);
});

test('auth checks of the client API: same codes over HTTP and as the WebSocket error frame (close 4001)', async () => {
  const sig = userSig('w_a');
  const cases = [
    ['', 60012],
    [`sdkappid=abc&identifier=w_a&usersig=${sig}`, 60006],
    [`sdkappid=999&identifier=w_a&usersig=${sig}`, 70020],
    [`sdkappid=${SDKAPPID}&usersig=${sig}`, 60004],
    [`sdkappid=${SDKAPPID}&identifier=w_a&usersig=`, 70002],
    [`sdkappid=${SDKAPPID}&identifier=w_a&usersig=${userSig('w_a', 1).slice(0, -4)}`, null],
  ];
  for (const [query, code] of cases) {
    const r = await fetch(`${srv.base}/v1/profile/get_my_profile?${query}`, { method: 'POST', body: '{}' }).then((x) => x.json());
    if (code !== null) assert.equal(r.ErrorCode, code, `HTTP ?${query.slice(0, 40)}`);
    else assert.notEqual(r.ErrorCode, 0);
    const ws = new WebSocket(`${srv.base.replace('http', 'ws')}/v1/ws?${query}`);
    const frame = await new Promise((res) => ws.once('message', (d) => res(JSON.parse(String(d)))));
    const closeCode = await new Promise((res) => ws.once('close', (c) => res(c)));
    assert.deepEqual([frame.type, frame.code, closeCode], ['error', r.ErrorCode, 4001], `WS ?${query.slice(0, 40)}`);
  }
});

test('update_my_profile: atomic (one bad item → nothing written), a duplicate tag takes the later value', async () => {
  const before = (await post('/v1/profile/get_my_profile', 'w_f', {})).UserProfileItem[0];
  const bad = await post('/v1/profile/update_my_profile', 'w_f', {
    ProfileItem: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'ok' }, { Tag: 'Tag_Profile_IM_Gender', Value: 'nope' }],
  });
  assert.equal(bad.ErrorCode, 40605);
  const same = (await post('/v1/profile/get_my_profile', 'w_f', {})).UserProfileItem[0];
  assert.equal(same.Version, before.Version);
  const dup = await post('/v1/profile/update_my_profile', 'w_f', {
    ProfileItem: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'first' }, { Tag: 'Tag_Profile_IM_Nick', Value: 'second' }],
  });
  assert.equal(dup.ErrorCode, 0);
  const after = (await post('/v1/profile/get_my_profile', 'w_f', { TagList: ['Tag_Profile_IM_Nick'] })).UserProfileItem[0];
  assert.deepEqual(after.ProfileItem, [{ Tag: 'Tag_Profile_IM_Nick', Value: 'second' }]);
});
