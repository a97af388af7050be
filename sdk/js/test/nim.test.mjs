// NIM facade against a real Portrait server, and cross-facade round trips with TencentCloudChat.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT, TYPES } from '../dist/index.js';
import { startServer, sleep } from './helpers/server.mjs';
import { createChat, createNim, loginReady, record, cb, waitFor } from './helpers/sdk.mjs';

let srv;
const cleanup = [];

before(async () => {
  srv = await startServer();
});
after(async () => {
  for (const f of cleanup) await f();
  await srv?.stop();
});

/** A NIM instance that resolves once its connect-time sync is done; records callbacks. */
async function nimReady(account, extra = {}) {
  const calls = { connect: [], myinfo: [], updatemyinfo: [], users: [], updateuser: [], disconnect: [], errors: [] };
  let done;
  const synced = new Promise((r) => (done = r));
  const nim = createNim(srv.base, {
    account,
    onconnect: (i) => calls.connect.push(i),
    onmyinfo: (u) => calls.myinfo.push(u),
    onupdatemyinfo: (u) => calls.updatemyinfo.push(u),
    onusers: (us) => calls.users.push(us),
    onupdateuser: (u) => calls.updateuser.push(u),
    ondisconnect: (i) => calls.disconnect.push(i),
    onerror: (e) => calls.errors.push(e),
    onsyncdone: () => done(),
    ...extra,
  });
  cleanup.push(() => nim.destroy());
  await synced;
  return { nim, calls };
}

test('getInstance connects: onconnect, onmyinfo, onusers (syncAccounts), onsyncdone', async () => {
  await srv.importAccounts([{ UserID: 'a_nina', Nick: 'Nina' }, { UserID: 'a_omar', Nick: 'Omar' }, 'a_pia']);
  const { calls } = await nimReady('a_nina', { syncAccounts: ['a_omar', 'a_pia', 'a_nobody'] });
  const { port, hostname } = new URL(srv.base);
  assert.deepEqual(calls.connect, [{
    account: 'a_nina', lastLoginDeviceId: '', connectionId: 'a_nina-1', ip: hostname, port,
  }]);
  assert.equal(calls.myinfo.length, 1);
  assert.equal(calls.myinfo[0].account, 'a_nina');
  assert.equal(calls.myinfo[0].nick, 'Nina');
  assert.equal(calls.myinfo[0].gender, 'unknown');
  assert.equal(calls.myinfo[0].birth, '');
  assert.equal(calls.users.length, 1);
  assert.deepEqual(calls.users[0].map((u) => [u.account, u.nick]), [['a_omar', 'Omar'], ['a_pia', '']]);
});

test('a login failure reaches onerror and ondisconnect with the server code', async () => {
  const errors = [];
  const disc = [];
  createNim(srv.base, { account: 'z_nobody', onerror: (e) => errors.push(e), ondisconnect: (d) => disc.push(d) });
  await waitFor(() => errors.length === 1, 5000, 'onerror');
  assert.equal(errors[0].code, 70107);
  assert.equal(disc[0].code, 70107);
});

test('updateMyInfo: every NIM field round-trips, through NIM and through TencentCloudChat', async () => {
  await srv.importAccounts(['b_nim', 'b_chat']);
  const { nim } = await nimReady('b_nim');
  const card = {
    nick: 'newNick', avatar: 'http://newAvatar', sign: 'newSign', gender: 'male', email: 'new@email.com',
    birth: '1900-01-01', tel: '13523578129', custom: '{"type":"newCustom","value":"new"}',
  };
  const [err, user] = await cb((done) => nim.updateMyInfo({ ...card, done }));
  assert.equal(err, null);
  for (const [k, v] of Object.entries(card)) assert.equal(user[k], v, k);
  assert.ok(user.version > 0);

  // NIM read (server) on another instance.
  const { nim: other } = await nimReady('b_chat');
  const [e2, got] = await cb((done) => other.getUser({ account: 'b_nim', sync: true, done }));
  assert.equal(e2, null);
  for (const [k, v] of Object.entries(card)) assert.equal(got[k], v, k);

  // TencentCloudChat read of the NIM-written card.
  const chat = createChat(srv.base);
  cleanup.push(() => chat.destroy());
  await loginReady(chat, 'b_chat');
  const [p] = (await chat.getUserProfile({ userIDList: ['b_nim'] })).data;
  assert.equal(p.nick, 'newNick');
  assert.equal(p.avatar, 'http://newAvatar');
  assert.equal(p.selfSignature, 'newSign');
  assert.equal(p.gender, TYPES.GENDER_MALE);
  assert.equal(p.birthday, 19000101);
  assert.deepEqual(p.profileCustomField, [
    { key: 'Tag_Profile_Custom_Email', value: 'new@email.com' },
    { key: 'Tag_Profile_Custom_Ex', value: '{"type":"newCustom","value":"new"}' },
    { key: 'Tag_Profile_Custom_Tel', value: '13523578129' },
  ]);
});

test('a profile written through TencentCloudChat reads correctly through NIM', async () => {
  await srv.importAccounts(['c_chat', 'c_nim']);
  const chat = createChat(srv.base);
  cleanup.push(() => chat.destroy());
  await loginReady(chat, 'c_chat');
  await chat.updateMyProfile({
    nick: 'Chat Nick', avatar: 'https://a/c.png', selfSignature: 'hello', gender: TYPES.GENDER_FEMALE, birthday: 20010911,
    allowType: TYPES.ALLOW_TYPE_DENY_ANY, level: 9,
    profileCustomField: [
      { key: 'Tag_Profile_Custom_Email', value: 'c@x.io' },
      { key: 'Tag_Profile_Custom_Tel', value: '555' },
      { key: 'Tag_Profile_Custom_Ex', value: '{"vip":true}' },
    ],
  });
  const { nim } = await nimReady('c_nim');
  const [err, u] = await cb((done) => nim.getUser({ account: 'c_chat', done }));
  assert.equal(err, null);
  assert.deepEqual(
    { nick: u.nick, avatar: u.avatar, sign: u.sign, gender: u.gender, birth: u.birth, email: u.email, tel: u.tel, custom: u.custom },
    { nick: 'Chat Nick', avatar: 'https://a/c.png', sign: 'hello', gender: 'female', birth: '2001-09-11', email: 'c@x.io', tel: '555', custom: '{"vip":true}' },
  );
  // The same user on a NIM device: updateMyInfo leaves the fields NIM does not know untouched.
  const { nim: same } = await nimReady('c_chat');
  const [e2] = await cb((done) => same.updateMyInfo({ nick: 'Via NIM', birth: '2001-09-12', done }));
  assert.equal(e2, null);
  const [e3, again] = await cb((done) => nim.getUser({ account: 'c_chat', sync: true, done }));
  assert.equal(e3, null);
  assert.equal(again.nick, 'Via NIM');
  assert.equal(again.birth, '2001-09-12');
  // chat (the first device of c_chat) learns it by push; its cache then answers.
  await waitFor(async () => (await chat.getMyProfile()).data.nick === 'Via NIM', 5000, 'push to the other device');
  const [p] = (await chat.getUserProfile({ userIDList: ['c_chat'] })).data;
  assert.equal(p.nick, 'Via NIM');
  assert.equal(p.birthday, 20010912);
  assert.equal(p.allowType, TYPES.ALLOW_TYPE_DENY_ANY);
  assert.equal(p.level, 9);
  assert.equal(p.profileCustomField.length, 3);
});

test('updateMyInfo client-side checks (414) and server codes', async () => {
  await srv.importAccounts(['d_nim']);
  const { nim } = await nimReady('d_nim');
  let [err] = await cb((done) => nim.updateMyInfo({ done }));
  assert.equal(err.code, 414);
  // A gender, email, birth or tel not in the vendor's format: thrown at once, as the vendor does.
  const never = () => assert.fail('done must not be called');
  assert.throws(() => nim.updateMyInfo({ gender: 'other', done: never }), { code: 414 });
  assert.throws(() => nim.updateMyInfo({ birth: '31/12/1999', done: never }), { code: 414 });
  [err] = await cb((done) => nim.updateMyInfo({ nick: 'forbiddenword', done }));
  assert.equal(err.code, 40005);
  [err] = await cb((done) => nim.updateMyInfo({ tel: '1'.repeat(40), done }));
  assert.equal(err.code, 40601);
});

test('getUsers: up to 150 (server calls of ≤100), more → 414; missing accounts left out; getUser of a missing account → null', async () => {
  const ids = Array.from({ length: 150 }, (_, i) => `f_${String(i).padStart(3, '0')}`);
  await srv.importAccounts(['f_viewer', ...ids.map((id) => ({ UserID: id, Nick: id.toUpperCase() }))]);
  const bodies = [];
  const { nim } = await nimReady('f_viewer', {
    fetch: (url, init) => {
      if (url.includes('get_user_profile')) bodies.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
  const [err, users] = await cb((done) => nim.getUsers({ accounts: ids, done }));
  assert.equal(err, null);
  assert.equal(users.length, 150);
  assert.deepEqual(users.map((u) => u.account), ids);
  assert.equal(users[149].nick, 'F_149');
  assert.deepEqual(bodies.map((b) => b.To_Account.length), [100, 50]);
  const [err2] = await cb((done) => nim.getUsers({ accounts: [...ids, 'f_extra'], done }));
  assert.equal(err2.code, 414);
  const [err3, none] = await cb((done) => nim.getUser({ account: 'f_nobody', done }));
  assert.equal(err3, null);
  assert.equal(none, null);
  const [, some] = await cb((done) => nim.getUsers({ accounts: ['f_001', 'f_nobody', 'f_002'], done }));
  assert.deepEqual(some.map((u) => u.account), ['f_001', 'f_002']);
});

test('onupdateuser for shown users, onupdatemyinfo for changes made elsewhere, mergeUsers', async () => {
  await srv.importAccounts([{ UserID: 'g_nim', Nick: 'Me' }, { UserID: 'g_friend', Nick: 'Friend' }]);
  const { nim, calls } = await nimReady('g_nim');
  const [, users] = await cb((done) => nim.getUsers({ accounts: ['g_friend'], done }));
  let data = nim.mergeUsers([], users);
  const friend = createChat(srv.base);
  cleanup.push(() => friend.destroy());
  await loginReady(friend, 'g_friend');
  await friend.updateMyProfile({ nick: 'Friend 2', selfSignature: 'hi' });
  await waitFor(() => calls.updateuser.length === 1, 5000, 'onupdateuser');
  assert.equal(calls.updateuser[0].account, 'g_friend');
  assert.equal(calls.updateuser[0].nick, 'Friend 2');
  assert.equal(calls.updateuser[0].sign, 'hi');
  data = nim.mergeUsers(data, calls.updateuser[0]);
  assert.equal(data.length, 1);
  assert.equal(data[0].nick, 'Friend 2');

  // Own change on this device: answered by `done`, not by onupdatemyinfo.
  const [e1] = await cb((done) => nim.updateMyInfo({ sign: 'mine', done }));
  assert.equal(e1, null);
  // Own change on another device (a second session of the same user): onupdatemyinfo.
  const other = createChat(srv.base);
  cleanup.push(() => other.destroy());
  await loginReady(other, 'g_nim');
  await other.updateMyProfile({ nick: 'Me elsewhere' });
  await waitFor(() => calls.updatemyinfo.length >= 1, 5000, 'onupdatemyinfo');
  await sleep(300);
  assert.deepEqual(calls.updatemyinfo.map((u) => u.nick), ['Me elsewhere']);
  assert.equal(calls.updatemyinfo[0].sign, 'mine', 'the full card after the change');
});

test('disconnect / connect', async () => {
  await srv.importAccounts(['h_nim']);
  const { nim, calls } = await nimReady('h_nim');
  await cb((done) => nim.disconnect({ done }));
  assert.deepEqual(calls.disconnect, [
    { code: 'manuallyDisconnect', message: 'disconnected by the app', callFunc: 'link::disconnect' },
  ]);
  const [err] = await cb((done) => nim.getUser({ account: 'h_nim', done }));
  assert.equal(err.code, 2999);
  nim.connect();
  await waitFor(() => calls.connect.length === 2, 5000, 'reconnect');
  const [e2, me] = await cb((done) => nim.getUser({ account: 'h_nim', done }));
  assert.equal(e2, null);
  assert.equal(me.account, 'h_nim');
});

void EVENT;
void record;
