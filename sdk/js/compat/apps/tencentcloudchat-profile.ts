// A profile page written against @tencentcloud/chat's typings, in the style of its docs
// (trtc.io/document/47970 "Login and Logout", /48161 "User Profile", /47968 "Initialization").
// check.mjs compiles it as is (against @tencentcloud/chat 3.6.x), then with only the import
// swapped to '@portrait/web-sdk'.
import TencentCloudChat, { ChatSDK, Profile } from '@tencentcloud/chat';

interface ProfileView {
  userID: string;
  nick: string;
  gender: TencentCloudChat.TYPES;
  allowType: TencentCloudChat.TYPES;
}

const views = new Map<string, ProfileView>();

function render(profile: Profile): void {
  views.set(profile.userID, {
    userID: profile.userID,
    nick: profile.nick,
    gender: profile.gender,
    allowType: profile.allowType,
  });
  const label = profile.gender === TencentCloudChat.TYPES.GENDER_FEMALE ? 'she'
    : profile.gender === TencentCloudChat.TYPES.GENDER_MALE ? 'he' : 'they';
  const forbidden = profile.adminForbidType === TencentCloudChat.TYPES.FORBID_TYPE_SEND_OUT;
  const custom: Array<any> = profile.profileCustomField;
  console.log(label, forbidden, profile.birthday, profile.location, profile.selfSignature, profile.avatar,
    profile.language, profile.messageSettings, profile.level, profile.role, custom.length);
}

export function createChat(proxyServer?: string): ChatSDK {
  const options = {
    SDKAppID: 0, // Replace 0 with the SDKAppID of your Chat application when connecting.
    proxyServer,
  };
  const chat: ChatSDK = TencentCloudChat.create(options);
  chat.setLogLevel(0); // common level, for development

  const onSdkReady = function (event: any) {
    console.log('ready', event.name);
  };
  chat.on(TencentCloudChat.EVENT.SDK_READY, onSdkReady);
  chat.on(TencentCloudChat.EVENT.SDK_NOT_READY, function (event: any) {
    console.log('not ready', event.name);
  });
  chat.on(TencentCloudChat.EVENT.PROFILE_UPDATED, function (event: any) {
    // event.name - TencentCloudChat.EVENT.PROFILE_UPDATED
    // event.data - an array that stores Profile objects
    (event.data as Profile[]).forEach(render);
  });
  chat.on(TencentCloudChat.EVENT.KICKED_OUT, function (event: any) {
    // event.data.type - the reason: TencentCloudChat.TYPES.KICKED_OUT_*
    switch (event.data.type) {
      case TencentCloudChat.TYPES.KICKED_OUT_MULT_ACCOUNT:
      case TencentCloudChat.TYPES.KICKED_OUT_MULT_DEVICE:
      case TencentCloudChat.TYPES.KICKED_OUT_USERSIG_EXPIRED:
      case TencentCloudChat.TYPES.KICKED_OUT_REST_API:
        console.log('kicked out', event.data.type);
    }
  });
  chat.on(TencentCloudChat.EVENT.NET_STATE_CHANGE, function (event: any) {
    const state: TencentCloudChat.TYPES = event.data.state;
    if (state === TencentCloudChat.TYPES.NET_STATE_CONNECTED) console.log('online');
    if (state === TencentCloudChat.TYPES.NET_STATE_CONNECTING) console.log('connecting');
    if (state === TencentCloudChat.TYPES.NET_STATE_DISCONNECTED) console.log('offline');
  });
  chat.on(TencentCloudChat.EVENT.ERROR, function (event: any) {
    console.log(event.data.code, event.data.message);
  });
  chat.off(TencentCloudChat.EVENT.SDK_READY, onSdkReady);
  return chat;
}

export async function signIn(chat: ChatSDK, userID: string, userSig: string): Promise<string> {
  const promise = chat.login({ userID, userSig });
  const imResponse = await promise;
  console.log(imResponse.data); // Login succeeded
  if (imResponse.data.repeatLogin === true) {
    // The account was already logged in: this login was a repeat.
    console.log(imResponse.data.errorInfo);
  }
  console.log(imResponse.data.actionStatus, imResponse.data.errorCode);
  console.log('signed in as', chat.getLoginUser(), 'server time', chat.getServerTime(), chat.isReady());
  return String(chat.getLoginUser());
}

export async function profilePage(chat: ChatSDK): Promise<void> {
  chat.getMyProfile().then(function (imResponse) {
    render(imResponse.data); // Personal profile - profile instance
  }).catch(function (imError) {
    console.warn('getMyProfile error:', imError); // Failed to obtain the user's profile
  });

  const others = await chat.getUserProfile({ userIDList: ['user1', 'user2'] });
  const list: Profile[] = others.data;
  list.forEach(render);

  const updated = await chat.updateMyProfile({
    nick: 'My nickname',
    avatar: 'http(s)://url/to/image.jpg',
    gender: TencentCloudChat.TYPES.GENDER_MALE,
    selfSignature: 'My status',
    allowType: TencentCloudChat.TYPES.ALLOW_TYPE_ALLOW_ANY,
    birthday: 20000101,
    location: '',
    language: 0,
    messageSettings: 0,
    level: 0,
    role: 0,
    profileCustomField: [{ key: 'Tag_Profile_Custom_Test1', value: 'My custom profile 1' }],
  });
  render(updated.data);

  const allow: TencentCloudChat.TYPES = TencentCloudChat.TYPES.ALLOW_TYPE_NEED_CONFIRM;
  await chat.updateMyProfile({ allowType: allow, adminForbidType: TencentCloudChat.TYPES.FORBID_TYPE_NONE });
}

export async function signOut(chat: ChatSDK): Promise<void> {
  await chat.logout();
  await chat.destroy();
}
