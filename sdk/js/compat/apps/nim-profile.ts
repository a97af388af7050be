// A profile page written against @yxim/nim-web-sdk's typings, in the style of its docs
// (the package README's getInstance, 用户资料托管: onmyinfo / updateMyInfo / getUser / getUsers).
// check.mjs compiles it as is (against @yxim/nim-web-sdk 9.21.x), then with only the import
// specifiers swapped to '@portrait/web-sdk'.
import { NIM } from '@yxim/nim-web-sdk';
import type { NIMGetInstanceOptions } from '@yxim/nim-web-sdk/dist/types/nim/types';
import type { NIMUserNameCard, NIMUserGender } from '@yxim/nim-web-sdk/dist/types/nim/UserInterface';
import type { NIMCommonError, NIMStrAnyObj } from '@yxim/nim-web-sdk/dist/types/types';

const data: { myInfo?: NIMUserNameCard; users: NIMUserNameCard[] } = { users: [] };

function onMyInfo(user: NIMUserNameCard): void {
  console.log('收到我的名片', user);
  data.myInfo = user;
}
function onUpdateMyInfo(user: NIMUserNameCard): void {
  console.log('我的名片更新了', user);
  data.myInfo = { ...data.myInfo, ...user };
}
function onUsers(users: NIMUserNameCard[]): void {
  console.log('收到用户资料列表', users);
  data.users = nim.mergeUsers(data.users, users);
}
function onUpdateUser(user: NIMUserNameCard): void {
  console.log('用户资料更新了', user);
  data.users = nim.mergeUsers(data.users, user);
}

const options: NIMGetInstanceOptions = {
  debug: true, // log to the console while integrating
  appKey: 'appKey',
  account: 'account',
  token: 'token',
  db: true, // set false to keep no local database
  logLevel: 'info',
  authType: 0,
  syncFriendUsers: true,
  onconnect: function (info) {
    console.log('连接成功', info.connectionId, info.ip, info.port, info.lastLoginDeviceId, info.customTag, info.country);
  },
  onwillreconnect: function (obj) {
    console.log('即将重连', obj.retryCount, obj.duration);
  },
  ondisconnect: function (error) {
    console.log('丢失连接', error.code, error.message);
    if (error.code === 'kicked' || error.code === 302) console.log('sign in again');
  },
  onerror: function (error: NIMStrAnyObj) {
    console.log(error);
  },
  onmyinfo: onMyInfo,
  onupdatemyinfo: onUpdateMyInfo,
  onusers: onUsers,
  onupdateuser: onUpdateUser,
  onsyncdone: function () {
    console.log('同步完成');
  },
};

const nim = NIM.getInstance(options);
// The same account again: the same instance (its options updated), not a second connection.
const again: typeof nim = NIM.getInstance(options);
console.log(again === nim);

function updateMyInfoDone(error: NIMCommonError | Error | NIMStrAnyObj | null, user: NIMUserNameCard): void {
  console.log('更新我的名片' + (!error ? '成功' : '失败'));
  if (!error) onUpdateMyInfo(user);
}

export function updateMyCard(gender: NIMUserGender): void {
  nim.updateMyInfo({
    nick: 'newNick',
    avatar: 'http://newAvatar',
    sign: 'newSign',
    gender,
    email: 'new@email.com',
    birth: '1900-01-01',
    tel: '13523578129',
    custom: '{type: "newCustom", value: "new"}',
    antiSpamBusinessId: 'business-id',
    done: updateMyInfoDone,
  });
}

export function loadCards(): void {
  nim.getUser({
    account: 'account',
    sync: true,
    done: function (error, user) {
      if (!error) onUsers([user]);
      console.log(user.account, user.nick, user.avatar, user.sign, user.gender, user.email, user.birth, user.tel,
        user.custom, user.createTime, user.updateTime);
    },
  });
  nim.getUsers({
    accounts: ['account1', 'account2'],
    done: function (error, users) {
      console.log('获取用户资料数组' + (!error ? '成功' : '失败'));
      if (!error) onUsers(users);
    },
  });
  nim.getUsersFromDB({
    accountIds: ['account1'],
    done: function (error, users) {
      if (!error) console.log(users.length);
    },
  });
}

export function renewToken(token: string): void {
  nim.setOptions({ ...options, token });
}

export function leave(): void {
  nim.disconnect({
    done: function (error, result) {
      console.log('disconnected', error, result);
    },
  });
  nim.connect();
  nim.logout();
  nim.destroy({ done: () => console.log('destroyed') });
}
