// Pure logic: field mapping, client-side checks, NIM conversions, mergeUsers. No server needed.
import test from 'node:test';
import assert from 'node:assert/strict';
import TencentCloudChat, {
  TYPES, EVENT, ERROR_CODE, chatOptionsToItems, toChatProfile, toNimUser, nimOptionsToItems,
  mergeUsers, birthToNim, birthFromNim, NIM,
} from '../dist/index.js';

test('TYPES and EVENT carry the vendor strings', () => {
  assert.equal(TencentCloudChat.TYPES, TYPES);
  assert.equal(TencentCloudChat.EVENT, EVENT);
  assert.deepEqual(
    [TYPES.GENDER_UNKNOWN, TYPES.GENDER_FEMALE, TYPES.GENDER_MALE],
    ['Gender_Type_Unknown', 'Gender_Type_Female', 'Gender_Type_Male'],
  );
  assert.deepEqual(
    [TYPES.ALLOW_TYPE_ALLOW_ANY, TYPES.ALLOW_TYPE_NEED_CONFIRM, TYPES.ALLOW_TYPE_DENY_ANY],
    ['AllowType_Type_AllowAny', 'AllowType_Type_NeedConfirm', 'AllowType_Type_DenyAny'],
  );
  assert.deepEqual([TYPES.FORBID_TYPE_NONE, TYPES.FORBID_TYPE_SEND_OUT], ['AdminForbid_Type_None', 'AdminForbid_Type_SendOut']);
  assert.deepEqual(
    [TYPES.KICKED_OUT_MULT_ACCOUNT, TYPES.KICKED_OUT_MULT_DEVICE, TYPES.KICKED_OUT_USERSIG_EXPIRED, TYPES.KICKED_OUT_REST_API],
    ['multipleAccount', 'multipleDevice', 'userSigExpired', 'REST_API_Kick'],
  );
  assert.deepEqual([TYPES.NET_STATE_CONNECTED, TYPES.NET_STATE_CONNECTING, TYPES.NET_STATE_DISCONNECTED], ['connected', 'connecting', 'disconnected']);
  assert.deepEqual(
    [EVENT.SDK_READY, EVENT.SDK_NOT_READY, EVENT.PROFILE_UPDATED, EVENT.KICKED_OUT, EVENT.NET_STATE_CHANGE, EVENT.ERROR],
    ['sdkStateReady', 'sdkStateNotReady', 'onProfileUpdated', 'kickedOut', 'netStateChange', 'error'],
  );
  assert.equal(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, 2721);
  assert.equal(ERROR_CODE.UPDATE_PROFILE_NO_KEY, 2722);
});

test('updateMyProfile options map to the 12 standard tags and custom fields', () => {
  const items = chatOptionsToItems({
    nick: 'N', avatar: 'http://a/b.png', gender: TYPES.GENDER_MALE, selfSignature: 'sig',
    allowType: TYPES.ALLOW_TYPE_DENY_ANY, birthday: 20000101, location: 'loc', language: 2,
    messageSettings: 1, adminForbidType: TYPES.FORBID_TYPE_NONE, level: 3, role: 4,
    profileCustomField: [{ key: 'Tag_Profile_Custom_Email', value: 'e@x' }, { key: 'Tag_Profile_Custom_Score', value: 7 }],
  });
  assert.deepEqual(Object.fromEntries(items.map((i) => [i.Tag, i.Value])), {
    Tag_Profile_IM_Nick: 'N',
    Tag_Profile_IM_Gender: 'Gender_Type_Male',
    Tag_Profile_IM_BirthDay: 20000101,
    Tag_Profile_IM_Location: 'loc',
    Tag_Profile_IM_SelfSignature: 'sig',
    Tag_Profile_IM_AllowType: 'AllowType_Type_DenyAny',
    Tag_Profile_IM_Language: 2,
    Tag_Profile_IM_Image: 'http://a/b.png',
    Tag_Profile_IM_MsgSettings: 1,
    Tag_Profile_IM_AdminForbidType: 'AdminForbid_Type_None',
    Tag_Profile_IM_Level: 3,
    Tag_Profile_IM_Role: 4,
    Tag_Profile_Custom_Email: 'e@x',
    Tag_Profile_Custom_Score: 7,
  });
});

test('client-side checks: 2721 invalid parameter, 2722 nothing to update', () => {
  const code = (fn) => {
    try {
      fn();
    } catch (e) {
      return e.code;
    }
    return 0;
  };
  assert.equal(code(() => chatOptionsToItems({})), 2722);
  assert.equal(code(() => chatOptionsToItems({ unknownKey: 1 })), 2722);
  assert.equal(code(() => chatOptionsToItems({ profileCustomField: [] })), 2722);
  assert.equal(code(() => chatOptionsToItems(null)), 2721);
  assert.equal(code(() => chatOptionsToItems('nick')), 2721);
  assert.equal(code(() => chatOptionsToItems({ nick: 5 })), 2721);
  assert.equal(code(() => chatOptionsToItems({ gender: 'male' })), 2721);
  assert.equal(code(() => chatOptionsToItems({ allowType: 'x' })), 2721);
  assert.equal(code(() => chatOptionsToItems({ adminForbidType: 'x' })), 2721);
  assert.equal(code(() => chatOptionsToItems({ birthday: '20000101' })), 2721);
  assert.equal(code(() => chatOptionsToItems({ level: -1 })), 2721);
  assert.equal(code(() => chatOptionsToItems({ role: 1.5 })), 2721);
  assert.equal(code(() => chatOptionsToItems({ language: 2 ** 32 })), 2721);
  assert.equal(code(() => chatOptionsToItems({ profileCustomField: {} })), 2721);
  assert.equal(code(() => chatOptionsToItems({ profileCustomField: [{ key: 'Email', value: 'x' }] })), 2721);
  assert.equal(code(() => chatOptionsToItems({ profileCustomField: [{ key: 'Tag_Profile_Custom_X', value: {} }] })), 2721);
  assert.equal(code(() => chatOptionsToItems({ nick: 'x', expectedVersion: 'a' })), 2721);
  assert.equal(code(() => chatOptionsToItems({ nick: '' })), 0, 'an empty nick is a valid update');
});

test('toChatProfile: vendor field names, defaults for missing tags, custom fields as {key, value}', () => {
  const p = toChatProfile({
    account: 'u1', version: 9, updatedAtMs: 1700000000000,
    items: { Tag_Profile_IM_Nick: 'Nick', Tag_Profile_Custom_Tel: '123', Tag_Profile_Custom_Email: 'a@b' },
  });
  assert.deepEqual(p, {
    userID: 'u1', nick: 'Nick', gender: 'Gender_Type_Unknown', birthday: 0, location: '', selfSignature: '',
    allowType: 'AllowType_Type_NeedConfirm', language: 0, avatar: '', messageSettings: 0,
    adminForbidType: 'AdminForbid_Type_None', level: 0, role: 0, lastUpdatedTime: 1700000000000,
    profileCustomField: [{ key: 'Tag_Profile_Custom_Email', value: 'a@b' }, { key: 'Tag_Profile_Custom_Tel', value: '123' }],
    version: 9,
  });
});

test('NIM birth: YYYY-MM-DD <-> uint32 YYYYMMDD', () => {
  assert.equal(birthFromNim('1900-01-01'), 19000101);
  assert.equal(birthFromNim('2024-02-29'), 20240229);
  assert.equal(birthFromNim(''), 0);
  assert.equal(birthFromNim('20000101'), 20000101);
  assert.throws(() => birthFromNim('2023-02-29'), { code: 414 });
  assert.throws(() => birthFromNim('01/02/2000'), { code: 414 });
  assert.throws(() => birthFromNim({}), { code: 414 });
  assert.equal(birthToNim(19000101), '1900-01-01');
  assert.equal(birthToNim(0), '');
  assert.equal(birthToNim(undefined), '');
  assert.equal(birthToNim(42), '42');
  for (const b of ['1999-12-31', '2000-01-01', '', '42']) assert.equal(birthToNim(birthFromNim(b)), b);
});

test('NIM updateMyInfo options map onto Portrait tags (and back)', () => {
  const items = nimOptionsToItems({
    nick: 'n', avatar: 'a', sign: 's', gender: 'female', email: 'e@x', birth: '1990-05-06', tel: '+86-1', custom: '{"k":1}',
  });
  const m = Object.fromEntries(items.map((i) => [i.Tag, i.Value]));
  assert.deepEqual(m, {
    Tag_Profile_IM_Nick: 'n', Tag_Profile_IM_Image: 'a', Tag_Profile_IM_SelfSignature: 's',
    Tag_Profile_IM_Gender: 'Gender_Type_Female', Tag_Profile_IM_BirthDay: 19900506,
    Tag_Profile_Custom_Email: 'e@x', Tag_Profile_Custom_Tel: '+86-1', Tag_Profile_Custom_Ex: '{"k":1}',
  });
  const u = toNimUser({ account: 'x', version: 3, updatedAtMs: 5, items: m });
  assert.deepEqual(u, {
    account: 'x', nick: 'n', avatar: 'a', sign: 's', gender: 'female', birth: '1990-05-06',
    email: 'e@x', tel: '+86-1', custom: '{"k":1}', createTime: 0, updateTime: 5, version: 3,
  });
  assert.equal(Object.fromEntries(nimOptionsToItems({ custom: { a: 1 } }).map((i) => [i.Tag, i.Value])).Tag_Profile_Custom_Ex, '{"a":1}');
  assert.throws(() => nimOptionsToItems({}), { code: 414 });
  assert.throws(() => nimOptionsToItems({ gender: 'Gender_Type_Male' }), { code: 414 });
  assert.throws(() => nimOptionsToItems({ nick: {} }), { code: 414 });
  // other custom fields for email/tel/custom
  const alt = nimOptionsToItems({ email: 'z' }, { email: 'Tag_Profile_Custom_Mail', tel: 'Tag_Profile_Custom_Phone', custom: 'Tag_Profile_Custom_Ext' });
  assert.deepEqual(alt, [{ Tag: 'Tag_Profile_Custom_Mail', Value: 'z' }]);
});

test('mergeUsers merges by account, keeps order, newer fields win, older versions do not', () => {
  const olds = [{ account: 'a', nick: 'A', sign: 's', version: 2 }, { account: 'b', nick: 'B', version: 1 }];
  const merged = mergeUsers(olds, [{ account: 'b', nick: 'B2', version: 5 }, { account: 'c', nick: 'C', version: 1 }]);
  assert.deepEqual(merged.map((u) => [u.account, u.nick]), [['a', 'A'], ['b', 'B2'], ['c', 'C']]);
  assert.equal(mergeUsers(merged, { account: 'b', nick: 'old', version: 3 })[1].nick, 'B2');
  assert.equal(mergeUsers(null, { account: 'x' }).length, 1);
  assert.equal(NIM.mergeUsers, mergeUsers);
  assert.equal(olds[1].nick, 'B', 'inputs are not mutated');
});
