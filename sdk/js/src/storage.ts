/**
 * Persistence of the live cache (cursor, subscriptions, cached profiles) so that a page reload
 * catches up from where it was instead of starting over. Uses `localStorage` when the page has
 * it; any object with the same three methods can be passed instead; `null` turns it off.
 */

/** The `Storage` subset the SDK uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A `StorageLike` in memory (nothing survives the process). Handy for tests and Node. */
export class MemoryStorage implements StorageLike {
  private readonly map = new Map<string, string>();
  getItem(key: string): string | null {
    return this.map.has(key) ? (this.map.get(key) as string) : null;
  }
  setItem(key: string, value: string): void {
    this.map.set(key, String(value));
  }
  removeItem(key: string): void {
    this.map.delete(key);
  }
  /** Keys currently stored. */
  keys(): string[] {
    return [...this.map.keys()];
  }
}

/** The storage to use: the given one, else `globalThis.localStorage` if usable, else none. */
export function resolveStorage(given: StorageLike | null | undefined): StorageLike | null {
  if (given === null) return null;
  if (given) return given;
  try {
    const ls = (globalThis as { localStorage?: StorageLike }).localStorage;
    if (ls && typeof ls.getItem === 'function') {
      const probe = '__portrait_probe__';
      ls.setItem(probe, '1');
      ls.removeItem(probe);
      return ls;
    }
  } catch {
    // storage disabled (private mode, sandboxed iframe, …)
  }
  return null;
}

/** Never throws: a full or broken storage only costs the catch-up after a reload. */
export function safeSet(storage: StorageLike | null, key: string, value: string): void {
  if (!storage) return;
  try {
    storage.setItem(key, value);
  } catch {
    // quota exceeded: ignore
  }
}

export function safeGet(storage: StorageLike | null, key: string): string | null {
  if (!storage) return null;
  try {
    return storage.getItem(key);
  } catch {
    return null;
  }
}

export function safeRemove(storage: StorageLike | null, key: string): void {
  if (!storage) return;
  try {
    storage.removeItem(key);
  } catch {
    // ignore
  }
}
