/**
 * The persisted document of a session's live cache: the resume cursor, the subscriptions and
 * the cached profiles (the user's own first), stored under one key per server, app and user, so
 * that a page reload catches up from where it was instead of starting over. Only the document's
 * shape, key, reading and writing live here; when to write (coalesced, flushed on pagehide,
 * logout and kick) is the session's business (`core.ts`).
 */
import type { CachedProfile, ProfileValue } from './types.js';
import { StorageLike, safeGet, safeSet } from './storage.js';

interface PersistedDoc {
  cursor: number | null;
  subs: string[];
  profiles: Record<string, StoredProfile>;
}

interface StoredProfile {
  v: number;
  t: number;
  i: Record<string, ProfileValue>;
  d?: 1;
}

/** What a reload restores: the user's own profile, the subscribed accounts' profiles, the cursor. */
export interface Restored {
  me: CachedProfile;
  others: CachedProfile[];
  cursor: number | null;
}

/** The storage key of `userID`'s document on `server` for app `sdkAppID`. */
export function persistKey(server: string, sdkAppID: number, userID: string): string {
  return `portrait:v1:${server}:${sdkAppID}:${userID}`;
}

/**
 * Reads the document at `key`; null when there is none, it is not valid, or it lacks the user's
 * own profile. Entries that are not valid profiles, and `userID` among the subscriptions, are
 * skipped.
 */
export function readPersisted(storage: StorageLike, key: string, userID: string): Restored | null {
  const raw = safeGet(storage, key);
  if (!raw) return null;
  let doc: PersistedDoc;
  try {
    doc = JSON.parse(raw) as PersistedDoc;
  } catch {
    return null;
  }
  if (!doc || typeof doc !== 'object' || typeof doc.profiles !== 'object' || doc.profiles === null) return null;
  const load = (a: string): CachedProfile | null => {
    const s = doc.profiles[a];
    if (!s || typeof s.v !== 'number' || typeof s.i !== 'object' || s.i === null) return null;
    return { account: a, version: s.v, updatedAtMs: s.t ?? 0, items: s.i, ...(s.d ? { deleted: true } : {}) };
  };
  const me = load(userID);
  if (!me) return null;
  const others: CachedProfile[] = [];
  for (const a of Array.isArray(doc.subs) ? doc.subs : []) {
    if (typeof a !== 'string' || a === userID) continue;
    const p = load(a);
    if (p) others.push(p);
  }
  const cursor = typeof doc.cursor === 'number' && Number.isFinite(doc.cursor) ? doc.cursor : null;
  return { me, others, cursor };
}

/**
 * Writes the whole document at `key` (always whole, so what a reload reads is consistent even
 * when two tabs of the same user write in turn): `userID`'s profile and those of `subs` found in
 * `cache`. Nothing is written when the user's own profile is not cached.
 */
export function writePersisted(
  storage: StorageLike,
  key: string,
  userID: string,
  subs: Iterable<string>,
  cache: ReadonlyMap<string, CachedProfile>,
  cursor: number | null,
): void {
  const subList = [...subs];
  const profiles: Record<string, StoredProfile> = {};
  for (const a of [userID, ...subList]) {
    const p = cache.get(a);
    if (!p) continue;
    const s: StoredProfile = { v: p.version, t: p.updatedAtMs, i: p.items };
    if (p.deleted) s.d = 1;
    profiles[a] = s;
  }
  if (!profiles[userID]) return;
  const doc: PersistedDoc = { cursor, subs: subList, profiles };
  safeSet(storage, key, JSON.stringify(doc));
}
