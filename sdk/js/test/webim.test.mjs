// Legacy webim-style calls against a real Portrait server.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { createWebim, CONNECTION_STATUS } from '../dist/index.js';
import { startServer, userSig, SDKAPPID, waitFor } from './helpers/server.mjs';
import { createChat, loginReady } from './helpers/sdk.mjs';

let srv;
const cleanup = [];
before(async () => {
  srv = await startServer();
  await srv.importAccounts([{ UserID: 'id1', Nick: 'NickNameTest1' }, 'id2', 'id3', 'w_me']);
});
after(async () => {
  for (const f of cleanup) await f();
  await srv?.stop();
});

function call(fn) {
  return new Promise((resolve) => fn((resp) => resolve({ ok: resp }), (err) => resolve({ err })));
}

async function loggedIn(user, listeners = {}) {
  const webim = createWebim({ server: srv.base, WebSocket, storage: null, reconnectBaseMs: 50 });
  const r = await call((ok, err) => webim.login({ sdkAppID: SDKAPPID, identifier: user, userSig: userSig(user) }, listeners, {}, ok, err));
  assert.ok(r.ok, JSON.stringify(r.err));
  cleanup.push(() => new Promise((res) => webim.logout(res)));
  return webim;
}

test('setProfilePortrait / getProfilePortrait: the vendor option and response shapes', async () => {
  const webim = await loggedIn('id1');
  const set = await call((ok, err) => webim.setProfilePortrait({
    ProfileItem: [
      { Tag: 'Tag_Profile_IM_Nick', Value: 'MyNickName' },
      { Tag: 'Tag_Profile_IM_Gender', Value: 'Gender_Type_Male' },
      { Tag: 'Tag_Profile_IM_AllowType', Value: 'AllowType_Type_NeedConfirm' },
      { Tag: 'Tag_Profile_IM_Image', Value: 'http://image.demo.com/head.jpg' },
    ],
  }, ok, err));
  assert.deepEqual(set.ok, { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '', ErrorDisplay: '' });

  const get = await call((ok, err) => webim.getProfilePortrait({
    To_Account: ['id1', 'id2', 'nobody'],
    TagList: ['Tag_Profile_IM_Nick', 'Tag_Profile_IM_AllowType', 'Tag_Profile_IM_Image'],
  }, ok, err));
  const r = get.ok;
  assert.equal(r.ActionStatus, 'OK');
  assert.equal(r.ErrorCode, 0);
  assert.deepEqual(r.UserProfileItem[0], {
    To_Account: 'id1',
    ProfileItem: [
      { Tag: 'Tag_Profile_IM_Nick', Value: 'MyNickName' },
      { Tag: 'Tag_Profile_IM_AllowType', Value: 'AllowType_Type_NeedConfirm' },
      { Tag: 'Tag_Profile_IM_Image', Value: 'http://image.demo.com/head.jpg' },
    ],
    ResultCode: 0,
    ResultInfo: '',
  });
  assert.equal(r.UserProfileItem[1].To_Account, 'id2');
  assert.equal(r.UserProfileItem[2].ResultCode, 40003);
  assert.deepEqual(r.Fail_Account, ['nobody']);
  assert.deepEqual(r.Invalid_Account, []);
});

test('errors reach cbErr with the vendor envelope (err.ErrorInfo)', async () => {
  const webim = await loggedIn('id2');
  const bad = await call((ok, err) => webim.setProfilePortrait({ ProfileItem: [{ Tag: 'Tag_Profile_IM_Gender', Value: 'Gender_Type_Robot' }] }, ok, err));
  assert.equal(bad.err.ActionStatus, 'FAIL');
  assert.equal(bad.err.ErrorCode, 40605);
  assert.ok(bad.err.ErrorInfo.length > 0);
  const unknown = await call((ok, err) => webim.setProfilePortrait({ ProfileItem: [{ Tag: 'Tag_Profile_Custom_888888_Test', Value: 'x' }] }, ok, err));
  assert.equal(unknown.err.ErrorCode, 40009);
  const forbidden = await call((ok, err) => webim.getProfilePortrait({ To_Account: ['id1'], TagList: ['Tag_Profile_Custom_Secret'] }, ok, err));
  assert.equal(forbidden.err.ErrorCode, 40007);
  const empty = await call((ok, err) => webim.getProfilePortrait({ To_Account: [], TagList: ['Tag_Profile_IM_Nick'] }, ok, err));
  assert.equal(empty.err.ErrorCode, 40002);
  const notIn = createWebim({ server: srv.base });
  const out = await call((ok, err) => notIn.getProfilePortrait({ To_Account: ['id1'], TagList: ['Tag_Profile_IM_Nick'] }, ok, err));
  assert.equal(out.err.ErrorCode, 2999);
  assert.equal(webim.Tool.trimStr('  a b  '), 'a b');
});

test('login listeners: onConnNotify and onProfileSystemNotifys[1] (Type 1 notices)', async () => {
  const conn = [];
  const notices = [];
  const webim = await loggedIn('w_me', {
    onConnNotify: (r) => conn.push(r.ErrorCode),
    onProfileSystemNotifys: { 1: (n) => notices.push(n) },
  });
  await waitFor(() => conn.includes(CONNECTION_STATUS.ON), 5000, 'connected');
  await call((ok, err) => webim.setProfilePortrait({ ProfileItem: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'Me' }] }, ok, err));
  await waitFor(() => notices.length === 1, 5000, 'notice');
  assert.deepEqual(notices[0], { Type: 1, Profile_Account: 'w_me', ProfileList: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'Me' }] });
});

test('createWebim({chat}) acts as the signed-in user of a TencentCloudChat instance', async () => {
  const chat = createChat(srv.base);
  cleanup.push(() => chat.destroy());
  await loginReady(chat, 'id3');
  const webim = createWebim({ chat });
  const r = await call((ok, err) => webim.setProfilePortrait({ ProfileItem: [{ Tag: 'Tag_Profile_IM_SelfSignature', Value: "I'm Test3" }] }, ok, err));
  assert.equal(r.ok.ErrorCode, 0);
  const [p] = (await chat.getUserProfile({ userIDList: ['id3'] })).data;
  assert.equal(p.selfSignature, "I'm Test3");
});
