/**
 * Portrait web SDK.
 *
 * ```js
 * import TencentCloudChat from '@portrait/web-sdk';          // TencentCloudChat-style
 * import { NIM, createWebim } from '@portrait/web-sdk';      // NIM-style, legacy webim-style
 * ```
 */
import TencentCloudChat from './chat.js';

export default TencentCloudChat;
export { TencentCloudChat, ChatInstance } from './chat.js';
export type { CreateOptions, ChatResponse, ChatEvent, ChatSDK, LoginResult } from './chat.js';
export { NIM, NimInstance } from './nim.js';
export type {
  NimOptions, NimDone, NimConnectInfo, NimDisconnectInfo, NimDisconnectOffline, NimDisconnectKicked,
  NimDisconnectOther, NimUpdateMyInfoOptions,
  // The vendor's type names (`@yxim/nim-web-sdk`), for code written against its typings.
  NIMGetInstanceOptions, NIMUserNameCard, NIMUserGender, NIMCommonError, NIMStrAnyObj,
} from './nim.js';
export { Webim, createWebim, CONNECTION_STATUS } from './webim.js';
export type { WebimResponse, WebimListeners, WebimLoginInfo } from './webim.js';
export { PortraitSession, SESSION_EVENT } from './core.js';
export type {
  SessionOptions, CachedProfile, ProfileChange, ProfileItem, ProfileValue, WebSocketCtor, WebSocketLike, NetState,
} from './core.js';
export { TYPES, EVENT, ERROR_CODE, TAG, CUSTOM_PREFIX, ADMIN_OPERATOR } from './constants.js';
export { PortraitError } from './errors.js';
export { MemoryStorage } from './storage.js';
export type { StorageLike } from './storage.js';
export {
  toChatProfile, chatOptionsToItems, toNimUser, nimOptionsToItems, mergeUsers, birthToNim, birthFromNim,
  DEFAULT_NIM_FIELDS,
} from './profile.js';
export type { Profile, ProfileCustomField, UpdateMyProfileOptions, NimUser, NimGender, NimFieldMap } from './profile.js';
