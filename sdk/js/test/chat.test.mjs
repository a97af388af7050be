// TencentCloudChat facade against a real Portrait server: calls, codes, live cache, reconnects.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT, TYPES, MemoryStorage } from '../dist/index.js';
import { startServer, startProxy, userSig, sleep } from './helpers/server.mjs';
import { createChat, record, loginReady, rejectCode, waitFor } from './helpers/sdk.mjs';

let srv;
const open = [];
function chatOn(server, opts) {
  const c = createChat(server, opts);
  open.push(c);
  return c;
}

before(async () => {
  srv = await startServer({ push: { max_subscriptions: 50 } });
});
after(async () => {
  for (const c of open) await c.destroy();
  await srv?.stop();
});

test('login refuses bad credentials with the server code; calls before login get 2999', async () => {
  await srv.importAccounts(['l_alice']);
  const c = chatOn(srv.base);
  assert.equal(await rejectCode(c.getMyProfile()), 2999);
  assert.equal(await rejectCode(c.login({ userID: 'l_nobody', userSig: userSig('l_nobody') })), 70107);
  assert.equal(await rejectCode(c.login({ userID: 'l_alice', userSig: userSig('l_nobody') })), 70013);
  assert.equal(await rejectCode(c.login({ userID: 'l_alice', userSig: 'garbage' })), 70003);
  assert.equal(await rejectCode(c.login({ userID: '', userSig: 'x' })), 2721);
  const r = await c.login({ userID: 'l_alice', userSig: userSig('l_alice') });
  assert.deepEqual(r, { code: 0, data: { repeatLogin: false, actionStatus: 'OK', errorCode: 0, errorInfo: '' } });
  const again = await c.login({ userID: 'l_alice', userSig: userSig('l_alice') });
  assert.equal(again.data.repeatLogin, true);
  await c.logout();
  assert.equal(await rejectCode(c.getMyProfile()), 2999);
});

test('getMyProfile / updateMyProfile: every field round-trips with the vendor names', async () => {
  await srv.importAccounts([{ UserID: 'r_alice', Nick: 'Alice' }, 'r_bob']);
  const a = chatOn(srv.base);
  await loginReady(a, 'r_alice');
  const me = (await a.getMyProfile()).data;
  assert.equal(me.userID, 'r_alice');
  assert.equal(me.nick, 'Alice');
  assert.equal(me.gender, TYPES.GENDER_UNKNOWN);
  assert.equal(me.allowType, TYPES.ALLOW_TYPE_NEED_CONFIRM);
  assert.equal(me.adminForbidType, TYPES.FORBID_TYPE_NONE);
  assert.deepEqual(me.profileCustomField, []);
  assert.ok(me.version > 0);

  const update = {
    nick: 'Alice Liddell', avatar: 'https://img.example/alice.png', gender: TYPES.GENDER_FEMALE,
    selfSignature: 'Curiouser and curiouser', allowType: TYPES.ALLOW_TYPE_ALLOW_ANY, birthday: 18520504,
    location: 'Oxford', language: 44, messageSettings: 1, level: 7, role: 3,
    profileCustomField: [
      { key: 'Tag_Profile_Custom_Email', value: 'alice@example.com' },
      { key: 'Tag_Profile_Custom_Tel', value: '+44-1865' },
      { key: 'Tag_Profile_Custom_Ex', value: '{"cat":"Dinah"}' },
    ],
  };
  const res = await a.updateMyProfile(update);
  assert.equal(res.code, 0);
  assert.ok(res.data.version > me.version);
  const { profileCustomField, ...plain } = update;
  for (const [k, v] of Object.entries(plain)) assert.deepEqual(res.data[k], v, k);
  assert.deepEqual(res.data.profileCustomField, [...profileCustomField].sort((x, y) => x.key.localeCompare(y.key)));

  // Read back by another user (server read, not the writer's cache).
  const b = chatOn(srv.base);
  await loginReady(b, 'r_bob');
  const [seen] = (await b.getUserProfile({ userIDList: ['r_alice'] })).data;
  for (const [k, v] of Object.entries(plain)) assert.deepEqual(seen[k], v, k);
  assert.deepEqual(seen.profileCustomField, res.data.profileCustomField);
  assert.equal(seen.version, res.data.version);
  assert.ok(seen.lastUpdatedTime > 0);
  // And by the writer itself (live cache, once the push event arrived; else the server).
  const mine = (await a.getMyProfile()).data;
  assert.equal(mine.nick, 'Alice Liddell');
  assert.equal(mine.version, res.data.version);
});

test('client-side checks reject before any request (2721, 2722)', async () => {
  await srv.importAccounts(['k_carol']);
  let requests = 0;
  const c = chatOn(srv.base, { fetch: (u, i) => { requests++; return fetch(u, i); } });
  await loginReady(c, 'k_carol');
  const before = requests;
  assert.equal(await rejectCode(c.updateMyProfile({})), 2722);
  assert.equal(await rejectCode(c.updateMyProfile({ foo: 'bar' })), 2722);
  assert.equal(await rejectCode(c.updateMyProfile({ gender: 'female' })), 2721);
  assert.equal(await rejectCode(c.updateMyProfile({ birthday: '2000-01-01' })), 2721);
  assert.equal(await rejectCode(c.updateMyProfile({ level: -3 })), 2721);
  assert.equal(await rejectCode(c.updateMyProfile({ profileCustomField: [{ key: 'Email', value: 'x' }] })), 2721);
  assert.equal(await rejectCode(c.getUserProfile({ userIDList: 'k_carol' })), 2721);
  assert.equal(requests, before, 'no request was made');
  const err = await c.updateMyProfile({}).catch((e) => e);
  assert.equal(typeof err.message, 'string');
});

test('server codes pass through as {code, message}', async () => {
  await srv.importAccounts(['e_dave']);
  const c = chatOn(srv.base);
  await loginReady(c, 'e_dave');
  assert.equal(await rejectCode(c.updateMyProfile({ adminForbidType: TYPES.FORBID_TYPE_SEND_OUT })), 40008);
  assert.equal(await rejectCode(c.updateMyProfile({ profileCustomField: [{ key: 'Tag_Profile_Custom_Score', value: 5 }] })), 40008);
  assert.equal(await rejectCode(c.updateMyProfile({ location: 'x'.repeat(17) })), 40601);
  assert.equal(await rejectCode(c.updateMyProfile({ nick: 'a forbiddenword here' })), 40005);
  assert.equal(await rejectCode(c.updateMyProfile({ profileCustomField: [{ key: 'Tag_Profile_Custom_Nope', value: 'x' }] })), 40009);
  const err = await c.updateMyProfile({ nick: 'a forbiddenword' }).catch((e) => e);
  assert.equal(err.code, 40005);
  assert.ok(err.message.length > 0);
  // ExpectedVersion (Portrait extension): stale → 49001, current → written.
  const v = (await c.getMyProfile()).data.version;
  const ok = await c.updateMyProfile({ nick: 'Dave', expectedVersion: v });
  assert.equal(await rejectCode(c.updateMyProfile({ nick: 'Dave 2', expectedVersion: v })), 49001);
  assert.equal(ok.data.nick, 'Dave');
});

test('getUserProfile: first 100 only, request order, missing accounts left out, admin-only fields hidden; subscriptions capped (LRU)', async () => {
  const ids = Array.from({ length: 120 }, (_, i) => `m_${String(i).padStart(3, '0')}`);
  await srv.importAccounts(['m_viewer', ...ids.map((id) => ({ UserID: id, Nick: `Nick ${id}` }))]);
  await srv.set('m_005', [{ Tag: 'Tag_Profile_Custom_Secret', Value: 'admin only' }, { Tag: 'Tag_Profile_Custom_Score', Value: 12 }]);
  const c = chatOn(srv.base);
  await loginReady(c, 'm_viewer');
  const errors = record(c, EVENT.ERROR);
  const res = await c.getUserProfile({ userIDList: ['m_ghost', ...ids] });
  assert.equal(res.code, 0);
  assert.deepEqual(res.data.map((p) => p.userID), ids.slice(0, 99), 'the first 100 asked, minus the missing one, in order');
  assert.equal(res.data[3].nick, 'Nick m_003');
  assert.deepEqual(res.data[5].profileCustomField, [{ key: 'Tag_Profile_Custom_Score', value: 12 }]);
  assert.deepEqual((await c.getUserProfile({ userIDList: [] })).data, []);
  // max_subscriptions = 50 on this server: the SDK keeps the 49 most recent others + itself.
  await sleep(200);
  assert.equal(c.session.getSubscriptions().length, 49);
  assert.deepEqual(c.session.getSubscriptions(), ids.slice(50, 99));
  assert.deepEqual(errors, [], 'no 49002 from the server');
});

test('PROFILE_UPDATED fires once per change, for shown profiles and the own profile', async () => {
  await srv.importAccounts([{ UserID: 'p_amy', Nick: 'Amy' }, { UserID: 'p_ben', Nick: 'Ben' }]);
  const amy = chatOn(srv.base);
  const ben = chatOn(srv.base);
  await loginReady(amy, 'p_amy');
  await loginReady(ben, 'p_ben');
  const amyEvents = record(amy, EVENT.PROFILE_UPDATED);
  const benEvents = record(ben, EVENT.PROFILE_UPDATED);
  await ben.getUserProfile({ userIDList: ['p_amy'] });
  await amy.updateMyProfile({ nick: 'Amy 1' });
  await waitFor(() => benEvents.length >= 1 && amyEvents.length >= 1, 5000, 'push');
  assert.equal(benEvents[0].name, EVENT.PROFILE_UPDATED);
  assert.equal(benEvents[0].data.length, 1);
  assert.equal(benEvents[0].data[0].userID, 'p_amy');
  assert.equal(benEvents[0].data[0].nick, 'Amy 1');
  assert.equal(amyEvents[0].data[0].userID, 'p_amy', 'own change announced too');
  // An admin change reaches both.
  await srv.set('p_amy', [{ Tag: 'Tag_Profile_IM_Image', Value: 'https://img.example/amy.png' }]);
  await waitFor(() => benEvents.length >= 2, 5000, 'admin change');
  assert.equal(benEvents[1].data[0].avatar, 'https://img.example/amy.png');
  assert.equal(benEvents[1].data[0].nick, 'Amy 1', 'the full profile, not only the changed field');
  await sleep(300);
  assert.equal(benEvents.length, 2, 'exactly once each');
  assert.equal(amyEvents.length, 2);
  // Ben's cache answers getUserProfile with the pushed state.
  const [p] = (await ben.getUserProfile({ userIDList: ['p_amy'] })).data;
  assert.equal(p.avatar, 'https://img.example/amy.png');
  assert.equal(p.version, benEvents[1].data[0].version);
});

test('subscribeUserProfile / unsubscribeUserProfile', async () => {
  await srv.importAccounts(['s_cat', 's_dan', 's_ghost_not']);
  const dan = chatOn(srv.base);
  await loginReady(dan, 's_dan');
  const events = record(dan, EVENT.PROFILE_UPDATED);
  const sub = await dan.subscribeUserProfile({ userIDList: ['s_cat', 's_nobody'] });
  assert.deepEqual(sub.data.userIDList, ['s_cat']);
  await srv.set('s_cat', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'Cat 1' }]);
  await waitFor(() => events.length === 1, 5000, 'subscribed change');
  assert.equal(events[0].data[0].nick, 'Cat 1');
  await dan.unsubscribeUserProfile({ userIDList: ['s_cat'] });
  await sleep(100);
  await srv.set('s_cat', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'Cat 2' }]);
  await srv.set('s_dan', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'Dan' }]);
  await waitFor(() => events.length === 2, 5000, 'own change');
  assert.equal(events[1].data[0].userID, 's_dan', 'no event for the unsubscribed account');
});

test('network drop: reconnects with backoff, catches up by cursor, each missed change exactly once', async () => {
  await srv.importAccounts([{ UserID: 'n_ann', Nick: 'Ann' }, 'n_bo']);
  const proxy = await startProxy(srv.base);
  try {
    const ann = chatOn(srv.base);
    const bo = chatOn(proxy.base);
    await loginReady(ann, 'n_ann');
    await loginReady(bo, 'n_bo');
    const events = record(bo, EVENT.PROFILE_UPDATED);
    const net = record(bo, EVENT.NET_STATE_CHANGE);
    await bo.getUserProfile({ userIDList: ['n_ann'] });
    await ann.updateMyProfile({ nick: 'Ann 1' });
    await waitFor(() => events.length === 1, 5000, 'live event');

    proxy.cut();
    await waitFor(() => net.some((e) => e.data.state === TYPES.NET_STATE_DISCONNECTED), 5000, 'disconnect seen');
    await ann.updateMyProfile({ nick: 'Ann 2' });
    await ann.updateMyProfile({ nick: 'Ann 3', selfSignature: 'back soon' });
    await sleep(700); // a few failed reconnect attempts while the network is down
    const attempts = bo.session.stats.connects;
    assert.ok(attempts >= 3, `retried with backoff (${attempts} connects)`);
    assert.equal(events.length, 1, 'nothing arrives while offline');

    proxy.restore();
    await waitFor(() => events.length >= 3, 5000, 'catch-up');
    await sleep(400);
    assert.deepEqual(events.map((e) => e.data[0].nick), ['Ann 1', 'Ann 2', 'Ann 3'], 'each missed change once, in order');
    assert.equal(events[2].data[0].selfSignature, 'back soon');
    assert.ok(net.map((e) => e.data.state).join(',').includes('disconnected,connecting'));
    assert.equal(net.at(-1).data.state, TYPES.NET_STATE_CONNECTED);
    await ann.updateMyProfile({ nick: 'Ann 4' });
    await waitFor(() => events.length === 4, 5000, 'live after reconnect');
    await sleep(200);
    assert.equal(events.length, 4);
  } finally {
    await proxy.close();
  }
});

test('page reload: the persisted cursor catches up; missed changes announced once, never twice', async () => {
  await srv.importAccounts([{ UserID: 'u_ivy', Nick: 'Ivy' }, { UserID: 'u_jay', Nick: 'Jay' }]);
  const storage = new MemoryStorage(); // stands in for the page's localStorage
  const ivy = chatOn(srv.base);
  await loginReady(ivy, 'u_ivy');

  const jay1 = chatOn(srv.base, { storage });
  await loginReady(jay1, 'u_jay');
  const first = record(jay1, EVENT.PROFILE_UPDATED);
  await jay1.getUserProfile({ userIDList: ['u_ivy'] });
  await ivy.updateMyProfile({ nick: 'Ivy 1' });
  await waitFor(() => first.length === 1, 5000, 'live event before the reload');
  await jay1.logout(); // the page goes away (its storage stays)
  assert.equal(storage.keys().length, 1, 'one document per user');
  const doc = JSON.parse(storage.getItem(storage.keys()[0]));
  assert.equal(typeof doc.cursor, 'number');
  assert.deepEqual(doc.subs, ['u_ivy']);
  assert.equal(doc.profiles.u_ivy.i.Tag_Profile_IM_Nick, 'Ivy 1');
  assert.ok(doc.profiles.u_jay);

  await ivy.updateMyProfile({ nick: 'Ivy 2' });
  await ivy.updateMyProfile({ nick: 'Ivy 3' });
  await srv.set('u_jay', [{ Tag: 'Tag_Profile_IM_SelfSignature', Value: 'changed by admin' }]);

  const jay2 = chatOn(srv.base, { storage }); // the reloaded page
  const events = record(jay2, EVENT.PROFILE_UPDATED);
  await loginReady(jay2, 'u_jay');
  const byUser = (u) => events.filter((e) => e.data[0].userID === u).map((e) => e.data[0]);
  assert.deepEqual(byUser('u_ivy').map((p) => p.nick), ['Ivy 2', 'Ivy 3'], 'exactly the missed changes');
  assert.deepEqual(byUser('u_jay').map((p) => p.selfSignature), ['changed by admin'], 'own missed change');
  const [ivyNow] = (await jay2.getUserProfile({ userIDList: ['u_ivy'] })).data;
  assert.equal(ivyNow.nick, 'Ivy 3');
  await ivy.updateMyProfile({ nick: 'Ivy 4' });
  await waitFor(() => byUser('u_ivy').length === 3, 5000, 'live after reload');
  await sleep(300);
  assert.deepEqual(byUser('u_ivy').map((p) => p.nick), ['Ivy 2', 'Ivy 3', 'Ivy 4']);
  assert.equal(events.length, 4);
});

test('ping: {"op":"ping"} is sent periodically and answered', async () => {
  await srv.importAccounts(['g_pat']);
  const c = chatOn(srv.base, { pingIntervalMs: 100 });
  await loginReady(c, 'g_pat');
  await sleep(650);
  assert.ok(c.session.stats.pingsSent >= 4, `pings sent: ${c.session.stats.pingsSent}`);
  assert.ok(c.session.stats.pongs >= 3, `pongs: ${c.session.stats.pongs}`);
  assert.equal(c.session.stats.connects, 1, 'the connection stayed up');
});

test('kick: KICKED_OUT (REST_API_Kick) then SDK_NOT_READY', async () => {
  await srv.importAccounts(['q_kim']);
  const c = chatOn(srv.base);
  await loginReady(c, 'q_kim');
  const kicked = record(c, EVENT.KICKED_OUT);
  const notReady = record(c, EVENT.SDK_NOT_READY);
  const r = await srv.kick('q_kim');
  assert.equal(r.ErrorCode, 0);
  await waitFor(() => kicked.length === 1 && notReady.length === 1, 5000, 'kick');
  assert.equal(kicked[0].data.type, TYPES.KICKED_OUT_REST_API);
  assert.equal(c.isReady(), false);
  assert.equal(await rejectCode(c.getMyProfile()), 2999);
  // The old UserSig no longer works; a new one does.
  assert.equal(await rejectCode(c.login({ userID: 'q_kim', userSig: userSig('q_kim') })), 70001);
  await sleep(3100); // a sig dated after the kick plus the allowed clock skew (usersig_clock_skew_secs = 2)
  await loginReady(c, 'q_kim', userSig('q_kim', 3600));
  assert.equal(c.isReady(), true);
});

test('persisted subscriptions over the server limit: refused at connect, trimmed and subscribed again', async () => {
  const ids = Array.from({ length: 60 }, (_, i) => `o_${String(i).padStart(2, '0')}`);
  await srv.importAccounts(['o_viewer', ...ids]);
  const storage = new MemoryStorage();
  const first = chatOn(srv.base, { storage });
  await loginReady(first, 'o_viewer');
  await first.getUserProfile({ userIDList: ids.slice(0, 49) });
  await waitFor(() => first.session.isSynced(), 5000, 'subscription caught up');
  await first.logout();
  // Make the persisted state hold 60 subscriptions (as if the server's limit had been lowered).
  const other = chatOn(srv.base);
  await loginReady(other, 'o_00');
  const extra = (await other.getUserProfile({ userIDList: ids.slice(49) })).data;
  const key = storage.keys()[0];
  const doc = JSON.parse(storage.getItem(key));
  for (const p of extra) doc.profiles[p.userID] = { v: p.version, t: p.lastUpdatedTime, i: { Tag_Profile_IM_Nick: p.nick } };
  doc.subs = ids;
  storage.setItem(key, JSON.stringify(doc));

  const c = chatOn(srv.base, { storage });
  const errors = record(c, EVENT.ERROR);
  const events = record(c, EVENT.PROFILE_UPDATED);
  await loginReady(c, 'o_viewer');
  assert.deepEqual(c.session.getSubscriptions(), ids.slice(11), 'the 49 most recent kept');
  assert.equal(c.session.stats.resubscribes, 1, 'the server refused the 60 of the URL; the SDK subscribed 49 again');
  await srv.set('o_59', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'still live' }]);
  await srv.set('o_00', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'evicted' }]);
  await waitFor(() => events.length >= 1, 5000, 'event of a kept account');
  await sleep(300);
  assert.deepEqual(events.map((e) => [e.data[0].userID, e.data[0].nick]), [['o_59', 'still live']]);
  assert.deepEqual(errors, []);
});

test('UserSig expiring while connected: KICKED_OUT (userSigExpired), no reconnect', async () => {
  await srv.importAccounts(['x_exp']);
  const c = chatOn(srv.base);
  const kicked = record(c, EVENT.KICKED_OUT);
  const notReady = record(c, EVENT.SDK_NOT_READY);
  await loginReady(c, 'x_exp', userSig('x_exp', 2));
  await waitFor(() => kicked.length === 1, 8000, 'expiry');
  assert.equal(kicked[0].data.type, TYPES.KICKED_OUT_USERSIG_EXPIRED);
  assert.equal(notReady.length, 1);
  const connects = c.session.stats.connects;
  await sleep(500);
  assert.equal(c.session.stats.connects, connects, 'no reconnect with an expired UserSig');
});
