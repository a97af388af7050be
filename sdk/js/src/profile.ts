/**
 * Conversions between Portrait's `{Tag, Value}` profiles and the vendors' objects:
 * TencentCloudChat `Profile` and NIM user cards. Pure functions (unit-tested without a server).
 */
import { CUSTOM_PREFIX, ERROR_CODE, NIM_PARAM_ERROR, TAG, TYPES, UINT32_MAX } from './constants.js';
import type { CachedProfile, ProfileItem, ProfileValue } from './core.js';
import { PortraitError } from './errors.js';

// ------------------------------------------------------------------ TencentCloudChat

/** A custom field of a TencentCloudChat Profile: full tag name as `key`. */
export interface ProfileCustomField {
  key: string;
  value: ProfileValue;
}

/** TencentCloudChat `Profile` (the vendor's field names) plus Portrait's `version`. */
export interface Profile {
  userID: string;
  nick: string;
  gender: TYPES;
  birthday: number;
  location: string;
  selfSignature: string;
  allowType: TYPES;
  language: number;
  avatar: string;
  messageSettings: number;
  adminForbidType: TYPES;
  level: number;
  role: number;
  /** Time of the profile's last change (Unix milliseconds, from the server). */
  lastUpdatedTime: number;
  profileCustomField: ProfileCustomField[];
  /** Version of the profile's last change (per app, strictly increasing). */
  version: number;
}

/** `updateMyProfile` options. */
export interface UpdateMyProfileOptions {
  nick?: string;
  avatar?: string;
  gender?: TYPES;
  selfSignature?: string;
  allowType?: TYPES;
  birthday?: number;
  location?: string;
  language?: number;
  messageSettings?: number;
  adminForbidType?: TYPES;
  level?: number;
  role?: number;
  profileCustomField?: ProfileCustomField[];
  /** Portrait extension: write only if the own profile is still at this version (else 49001). */
  expectedVersion?: number;
}

type Kind = 'string' | 'uint32' | { enum: readonly string[] };

/** TencentCloudChat field name → tag and kind, in the vendor's order. */
export const CHAT_FIELDS: ReadonlyArray<readonly [keyof Profile & keyof UpdateMyProfileOptions, string, Kind]> = [
  ['nick', TAG.NICK, 'string'],
  ['gender', TAG.GENDER, { enum: [TYPES.GENDER_UNKNOWN, TYPES.GENDER_FEMALE, TYPES.GENDER_MALE] }],
  ['birthday', TAG.BIRTHDAY, 'uint32'],
  ['location', TAG.LOCATION, 'string'],
  ['selfSignature', TAG.SELFSIGNATURE, 'string'],
  ['allowType', TAG.ALLOWTYPE, {
    enum: [TYPES.ALLOW_TYPE_NEED_CONFIRM, TYPES.ALLOW_TYPE_ALLOW_ANY, TYPES.ALLOW_TYPE_DENY_ANY],
  }],
  ['language', TAG.LANGUAGE, 'uint32'],
  ['avatar', TAG.AVATAR, 'string'],
  ['messageSettings', TAG.MESSAGESETTINGS, 'uint32'],
  ['adminForbidType', TAG.ADMINFORBIDTYPE, { enum: [TYPES.FORBID_TYPE_NONE, TYPES.FORBID_TYPE_SEND_OUT] }],
  ['level', TAG.LEVEL, 'uint32'],
  ['role', TAG.ROLE, 'uint32'],
];

function isUint32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= UINT32_MAX;
}

function str(v: ProfileValue | undefined, dflt = ''): string {
  return v === undefined || v === null ? dflt : String(v);
}
function num(v: ProfileValue | undefined): number {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : 0;
}

/** A cached profile as a TencentCloudChat `Profile`. */
export function toChatProfile(p: CachedProfile): Profile {
  const it = p.items;
  const custom: ProfileCustomField[] = Object.keys(it)
    .filter((k) => k.startsWith(CUSTOM_PREFIX))
    .sort()
    .map((key) => ({ key, value: it[key] }));
  return {
    userID: p.account,
    nick: str(it[TAG.NICK]),
    gender: str(it[TAG.GENDER], TYPES.GENDER_UNKNOWN) as TYPES,
    birthday: num(it[TAG.BIRTHDAY]),
    location: str(it[TAG.LOCATION]),
    selfSignature: str(it[TAG.SELFSIGNATURE]),
    allowType: str(it[TAG.ALLOWTYPE], TYPES.ALLOW_TYPE_NEED_CONFIRM) as TYPES,
    language: num(it[TAG.LANGUAGE]),
    avatar: str(it[TAG.AVATAR]),
    messageSettings: num(it[TAG.MESSAGESETTINGS]),
    adminForbidType: str(it[TAG.ADMINFORBIDTYPE], TYPES.FORBID_TYPE_NONE) as TYPES,
    level: num(it[TAG.LEVEL]),
    role: num(it[TAG.ROLE]),
    lastUpdatedTime: p.updatedAtMs,
    profileCustomField: custom,
    version: p.version,
  };
}

function invalid(message: string): PortraitError {
  return new PortraitError(ERROR_CODE.UPDATE_PROFILE_INVALID_PARAM, message);
}

/**
 * The vendor's client-side checks of `updateMyProfile` options, then the `{Tag, Value}` items.
 * Throws 2721 (invalid parameter) or 2722 (nothing to update); no request is made then.
 */
export function chatOptionsToItems(options: unknown): ProfileItem[] {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid('updateMyProfile: options must be an object');
  }
  const o = options as Record<string, unknown>;
  const items: ProfileItem[] = [];
  for (const [field, tag, kind] of CHAT_FIELDS) {
    const v = o[field];
    if (v === undefined) continue;
    if (kind === 'string') {
      if (typeof v !== 'string') throw invalid(`updateMyProfile: ${field} must be a string`);
    } else if (kind === 'uint32') {
      if (!isUint32(v)) throw invalid(`updateMyProfile: ${field} must be an integer from 0 to ${UINT32_MAX}`);
    } else if (typeof v !== 'string' || !kind.enum.includes(v)) {
      throw invalid(`updateMyProfile: ${field} must be one of ${kind.enum.join(', ')}`);
    }
    items.push({ Tag: tag, Value: v as ProfileValue });
  }
  const pcf = o.profileCustomField;
  if (pcf !== undefined) {
    if (!Array.isArray(pcf)) throw invalid('updateMyProfile: profileCustomField must be an array of {key, value}');
    for (const f of pcf) {
      if (typeof f !== 'object' || f === null) throw invalid('updateMyProfile: profileCustomField items must be {key, value}');
      const { key, value } = f as { key?: unknown; value?: unknown };
      if (typeof key !== 'string' || !key.startsWith(CUSTOM_PREFIX) || key.length === CUSTOM_PREFIX.length) {
        throw invalid(`updateMyProfile: profileCustomField key must start with ${CUSTOM_PREFIX}`);
      }
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value) && value >= 0)) {
        throw invalid(`updateMyProfile: profileCustomField value of ${key} must be a string or a non-negative integer`);
      }
      items.push({ Tag: key, Value: value });
    }
  }
  const ev = o.expectedVersion;
  if (ev !== undefined && !(typeof ev === 'number' && Number.isInteger(ev) && ev >= 0)) {
    throw invalid('updateMyProfile: expectedVersion must be a non-negative integer');
  }
  if (!items.length) {
    throw new PortraitError(ERROR_CODE.UPDATE_PROFILE_NO_KEY, 'updateMyProfile: nothing to update');
  }
  return items;
}

// ------------------------------------------------------------------ NIM

/** NIM gender strings. */
export type NimGender = 'unknown' | 'male' | 'female';

/** A NIM user card (`account, nick, avatar, sign, gender, email, birth, tel, custom, createTime, updateTime`) plus `version`. */
export interface NimUser {
  account: string;
  nick: string;
  avatar: string;
  sign: string;
  gender: NimGender;
  /** 'YYYY-MM-DD' ('' when unset). */
  birth: string;
  email?: string;
  tel?: string;
  custom?: string;
  /**
   * The vendor's card creation time. Portrait does not keep when an account's card was created:
   * always 0 (unknown).
   */
  createTime: number;
  /** Time of the last change (Unix milliseconds). */
  updateTime: number;
  version: number;
}

/** Where NIM's email / tel / custom live: custom fields the app declares. */
export interface NimFieldMap {
  email: string;
  tel: string;
  custom: string;
}

export const DEFAULT_NIM_FIELDS: NimFieldMap = Object.freeze({
  email: 'Tag_Profile_Custom_Email',
  tel: 'Tag_Profile_Custom_Tel',
  custom: 'Tag_Profile_Custom_Ex',
});

const GENDER_TO_NIM: Record<string, NimGender> = {
  [TYPES.GENDER_UNKNOWN]: 'unknown',
  [TYPES.GENDER_MALE]: 'male',
  [TYPES.GENDER_FEMALE]: 'female',
};
const GENDER_FROM_NIM: Record<NimGender, string> = {
  unknown: TYPES.GENDER_UNKNOWN,
  male: TYPES.GENDER_MALE,
  female: TYPES.GENDER_FEMALE,
};

/** uint32 YYYYMMDD → 'YYYY-MM-DD' (0 → ''; a number that is not such a date → its digits). */
export function birthToNim(v: ProfileValue | undefined): string {
  const n = num(v);
  if (!n) return '';
  const s = String(n);
  if (/^\d{8}$/.test(s)) {
    const y = s.slice(0, 4), m = s.slice(4, 6), d = s.slice(6, 8);
    if (validDate(+y, +m, +d)) return `${y}-${m}-${d}`;
  }
  return s;
}

function validDate(y: number, m: number, d: number): boolean {
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const days = [31, y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return d <= days[m - 1];
}

/** 'YYYY-MM-DD' (or '' → 0, or plain digits) → uint32 YYYYMMDD; anything else throws 414. */
export function birthFromNim(birth: unknown): number {
  if (birth === '' || birth === null) return 0;
  if (typeof birth === 'number' && isUint32(birth)) return birth;
  if (typeof birth !== 'string') throw nimInvalid('birth must be a string YYYY-MM-DD');
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(birth.trim());
  if (m) {
    if (!validDate(+m[1], +m[2], +m[3])) throw nimInvalid(`birth is not a valid date: ${birth}`);
    return Number(m[1] + m[2] + m[3]);
  }
  if (/^\d{1,10}$/.test(birth.trim())) {
    const n = Number(birth.trim());
    if (isUint32(n)) return n;
  }
  throw nimInvalid(`birth must be YYYY-MM-DD: ${birth}`);
}

function nimInvalid(message: string): PortraitError {
  return new PortraitError(NIM_PARAM_ERROR, message);
}

/** A cached profile as a NIM user card. */
export function toNimUser(p: CachedProfile, fields: NimFieldMap = DEFAULT_NIM_FIELDS): NimUser {
  const it = p.items;
  const u: NimUser = {
    account: p.account,
    nick: str(it[TAG.NICK]),
    avatar: str(it[TAG.AVATAR]),
    sign: str(it[TAG.SELFSIGNATURE]),
    gender: GENDER_TO_NIM[str(it[TAG.GENDER], TYPES.GENDER_UNKNOWN)] ?? 'unknown',
    birth: birthToNim(it[TAG.BIRTHDAY]),
    createTime: 0,
    updateTime: p.updatedAtMs,
    version: p.version,
  };
  if (it[fields.email] !== undefined) u.email = str(it[fields.email]);
  if (it[fields.tel] !== undefined) u.tel = str(it[fields.tel]);
  if (it[fields.custom] !== undefined) u.custom = str(it[fields.custom]);
  return u;
}

/** `updateMyInfo` options → items (414 for a bad value or nothing to update). */
export function nimOptionsToItems(options: unknown, fields: NimFieldMap = DEFAULT_NIM_FIELDS): ProfileItem[] {
  if (typeof options !== 'object' || options === null) throw nimInvalid('updateMyInfo: options must be an object');
  const o = options as Record<string, unknown>;
  const items: ProfileItem[] = [];
  const text = (name: string, tag: string) => {
    const v = o[name];
    if (v === undefined) return;
    if (typeof v !== 'string' && typeof v !== 'number') throw nimInvalid(`updateMyInfo: ${name} must be a string`);
    items.push({ Tag: tag, Value: String(v) });
  };
  text('nick', TAG.NICK);
  text('avatar', TAG.AVATAR);
  text('sign', TAG.SELFSIGNATURE);
  if (o.gender !== undefined) {
    const g = o.gender;
    if (typeof g !== 'string' || !(g in GENDER_FROM_NIM)) {
      throw nimInvalid("updateMyInfo: gender must be 'unknown', 'male' or 'female'");
    }
    items.push({ Tag: TAG.GENDER, Value: GENDER_FROM_NIM[g as NimGender] });
  }
  if (o.birth !== undefined) items.push({ Tag: TAG.BIRTHDAY, Value: birthFromNim(o.birth) });
  text('email', fields.email);
  text('tel', fields.tel);
  if (o.custom !== undefined) {
    const c = o.custom;
    const v = typeof c === 'string' ? c : typeof c === 'object' && c !== null ? JSON.stringify(c) : undefined;
    if (v === undefined) throw nimInvalid('updateMyInfo: custom must be a string (JSON recommended)');
    items.push({ Tag: fields.custom, Value: v });
  }
  if (!items.length) throw nimInvalid('updateMyInfo: nothing to update');
  return items;
}

/**
 * NIM's `mergeUsers(olds, news)`: users merged field by field per account (newer fields win),
 * olds' order kept, new accounts appended. Either argument may be one user or an array.
 */
export function mergeUsers<T extends { account: string }>(olds: T | T[] | null | undefined, news: T | T[] | null | undefined): T[] {
  const a = olds == null ? [] : Array.isArray(olds) ? olds : [olds];
  const b = news == null ? [] : Array.isArray(news) ? news : [news];
  const out: T[] = [];
  const idx = new Map<string, number>();
  for (const u of [...a, ...b]) {
    if (!u || typeof u.account !== 'string') continue;
    const i = idx.get(u.account);
    if (i === undefined) {
      idx.set(u.account, out.length);
      out.push({ ...u });
    } else {
      const cur = out[i] as T & { version?: number };
      const nu = u as T & { version?: number };
      // A card with a lower version than the one held is older: keep the held one.
      if (typeof cur.version === 'number' && typeof nu.version === 'number' && nu.version < cur.version) continue;
      out[i] = { ...cur, ...u };
    }
  }
  return out;
}
