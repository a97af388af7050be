/**
 * Constants with the vendors' exact strings.
 *
 * `TYPES` and `EVENT` are the values of `TencentCloudChat.TYPES` / `TencentCloudChat.EVENT`
 * (spec §5.1–5.2) for the calls this SDK supports; `ERROR_CODE` holds the vendor's client-side
 * codes that this SDK raises itself. Server codes (40xxx, 60xxx, 70xxx, 49xxx) pass through.
 */

/**
 * `TencentCloudChat.TYPES` (profile, kick and network-state subset). An enum, as in the vendor's
 * typings, so that `TencentCloudChat.TYPES` is also a type (`gender?: TencentCloudChat.TYPES`).
 */
export enum TYPES {
  GENDER_UNKNOWN = 'Gender_Type_Unknown',
  GENDER_FEMALE = 'Gender_Type_Female',
  GENDER_MALE = 'Gender_Type_Male',
  ALLOW_TYPE_ALLOW_ANY = 'AllowType_Type_AllowAny',
  ALLOW_TYPE_NEED_CONFIRM = 'AllowType_Type_NeedConfirm',
  ALLOW_TYPE_DENY_ANY = 'AllowType_Type_DenyAny',
  FORBID_TYPE_NONE = 'AdminForbid_Type_None',
  FORBID_TYPE_SEND_OUT = 'AdminForbid_Type_SendOut',
  KICKED_OUT_MULT_ACCOUNT = 'multipleAccount',
  KICKED_OUT_MULT_DEVICE = 'multipleDevice',
  KICKED_OUT_USERSIG_EXPIRED = 'userSigExpired',
  KICKED_OUT_REST_API = 'REST_API_Kick',
  NET_STATE_CONNECTED = 'connected',
  NET_STATE_CONNECTING = 'connecting',
  NET_STATE_DISCONNECTED = 'disconnected',
}
Object.freeze(TYPES);

/**
 * The `operator` of a push event for a change the user did not make themself: an app admin or
 * the app's backend made it. Which admin account is not shown to users (docs/client-api.md).
 */
export const ADMIN_OPERATOR = 'admin';

/** `TencentCloudChat.EVENT` (the events this SDK emits); an enum as in the vendor's typings. */
export enum EVENT {
  SDK_READY = 'sdkStateReady',
  SDK_NOT_READY = 'sdkStateNotReady',
  SDK_DESTROY = 'sdkDestroy',
  PROFILE_UPDATED = 'onProfileUpdated',
  KICKED_OUT = 'kickedOut',
  ERROR = 'error',
  NET_STATE_CHANGE = 'netStateChange',
}
Object.freeze(EVENT);

/** Client-side error codes (the vendor's numbers). */
export const ERROR_CODE = Object.freeze({
  /** updateMyProfile (and other profile calls here): a parameter has the wrong type or value. */
  UPDATE_PROFILE_INVALID_PARAM: 2721,
  /** updateMyProfile: nothing to update. */
  UPDATE_PROFILE_NO_KEY: 2722,
  NETWORK_ERROR: 2800,
  NETWORK_TIMEOUT: 2801,
  /** A call made before `login` succeeded (or after `logout`). */
  SDK_IS_NOT_READY: 2999,
  LOGGED_OUT: 3005,
  KICKED_OUT_REST_API: 3006,
} as const);

/** NIM status code for a parameter error (NIM server and SDK: 414). */
export const NIM_PARAM_ERROR = 414;

/** The 12 standard profile tags. */
export const TAG = Object.freeze({
  NICK: 'Tag_Profile_IM_Nick',
  GENDER: 'Tag_Profile_IM_Gender',
  BIRTHDAY: 'Tag_Profile_IM_BirthDay',
  LOCATION: 'Tag_Profile_IM_Location',
  SELFSIGNATURE: 'Tag_Profile_IM_SelfSignature',
  ALLOWTYPE: 'Tag_Profile_IM_AllowType',
  LANGUAGE: 'Tag_Profile_IM_Language',
  AVATAR: 'Tag_Profile_IM_Image',
  MESSAGESETTINGS: 'Tag_Profile_IM_MsgSettings',
  ADMINFORBIDTYPE: 'Tag_Profile_IM_AdminForbidType',
  LEVEL: 'Tag_Profile_IM_Level',
  ROLE: 'Tag_Profile_IM_Role',
} as const);

/** Prefix of app-declared custom fields. */
export const CUSTOM_PREFIX = 'Tag_Profile_Custom_';

/** Most accounts one `get_user_profile` call may name. */
export const MAX_ACCOUNTS_PER_GET = 100;
/** Most accounts NIM's `getUsers` accepts in one call. */
export const NIM_MAX_GET_USERS = 150;
/** Largest uint32. */
export const UINT32_MAX = 4294967295;
