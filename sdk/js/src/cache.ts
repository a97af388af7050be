/**
 * The live cache's version rules (docs/client-api.md "Delivery guarantees"), as pure functions
 * over cached profiles: what an HTTP snapshot is, when it replaces the cached profile, what a push
 * event makes of it, and the lowest version held. The cache's state (the map, subscriptions,
 * eviction), the announcements and when to persist stay in the session (`core.ts`); nothing here
 * does I/O or keeps state.
 */
import type { CachedProfile, ProfileChange, ProfileItem, ProfileValue } from './types.js';
import type { ProfileEvent } from './wire.js';

/** The full profiles (no TagList) of a get_*_profile answer, one per account found. */
export function snapshotsOf(answer: any): CachedProfile[] {
  const out: CachedProfile[] = [];
  for (const it of Array.isArray(answer?.UserProfileItem) ? answer.UserProfileItem : []) {
    if (it && it.ResultCode === 0 && typeof it.To_Account === 'string') {
      const items: Record<string, ProfileValue> = {};
      for (const p of Array.isArray(it.ProfileItem) ? it.ProfileItem : []) {
        if (p && typeof p.Tag === 'string') items[p.Tag] = p.Value;
      }
      out.push({
        account: it.To_Account,
        version: typeof it.Version === 'number' ? it.Version : 0,
        updatedAtMs: typeof it.UpdatedAtMs === 'number' ? it.UpdatedAtMs : 0,
        items,
      });
    }
  }
  return out;
}

/**
 * Whether snapshot `s` replaces the cached `cur`: when nothing is cached, when it is newer, or
 * when it is as new as a profile cached as deleted.
 */
export function snapshotReplaces(cur: CachedProfile | undefined, s: CachedProfile): boolean {
  return !cur || s.version > cur.version || (s.version === cur.version && !!cur.deleted);
}

/** What to answer when snapshot `s` does not replace `cur`: the cached one, unless it is deleted. */
export function shownInstead(cur: CachedProfile | undefined, s: CachedProfile): CachedProfile {
  return cur!.deleted ? s : cur!;
}

/**
 * What push event `f` makes of the cached `cur` (which it is newer than): its kind, its items
 * as announced, and the next cached profile (a delete empties it; a set or import merges its items
 * into the cached ones).
 */
export function afterEvent(
  cur: CachedProfile | undefined,
  f: ProfileEvent,
): { kind: ProfileChange['kind']; items: ProfileItem[]; next: CachedProfile } {
  const account = f.account;
  const version = f.version;
  const kind: ProfileChange['kind'] = f.kind === 'delete' ? 'delete' : f.kind === 'import' ? 'import' : 'set';
  const items: ProfileItem[] = Array.isArray(f.items)
    ? f.items.filter((i) => i && typeof i.Tag === 'string').map((i) => ({ Tag: i.Tag, Value: i.Value }))
    : [];
  let next: CachedProfile;
  if (kind === 'delete') {
    next = { account, version, updatedAtMs: f.time_ms ?? Date.now(), items: {}, deleted: true };
  } else {
    const base = cur && !cur.deleted ? cur.items : {};
    const merged: Record<string, ProfileValue> = { ...base };
    for (const it of items) merged[it.Tag] = it.Value;
    next = { account, version, updatedAtMs: typeof f.time_ms === 'number' ? f.time_ms : Date.now(), items: merged };
  }
  return { kind, items, next };
}

/** The lowest version among `profiles` (null when there are none). */
export function lowestVersion(profiles: Iterable<CachedProfile>): number | null {
  let m: number | null = null;
  for (const p of profiles) m = m === null ? p.version : Math.min(m, p.version);
  return m;
}
