/** A minimal event emitter (no dependency on Node's `events`). */
export type Handler<T = unknown> = (payload: T) => void;

interface Entry {
  fn: Handler<any>;
  ctx: unknown;
  once: boolean;
}

export class Emitter {
  private readonly handlers = new Map<string, Entry[]>();

  on(name: string, fn: Handler<any>, ctx?: unknown, once = false): void {
    if (typeof fn !== 'function') return;
    const list = this.handlers.get(name) ?? [];
    list.push({ fn, ctx, once });
    this.handlers.set(name, list);
  }

  off(name: string, fn?: Handler<any>, ctx?: unknown): void {
    const list = this.handlers.get(name);
    if (!list) return;
    if (!fn) {
      this.handlers.delete(name);
      return;
    }
    const kept = list.filter((e) => !(e.fn === fn && (ctx === undefined || e.ctx === ctx)));
    if (kept.length) this.handlers.set(name, kept);
    else this.handlers.delete(name);
  }

  emit(name: string, payload?: unknown): void {
    const list = this.handlers.get(name);
    if (!list) return;
    for (const e of [...list]) {
      if (e.once) this.off(name, e.fn, e.ctx);
      try {
        e.fn.call(e.ctx, payload);
      } catch (err) {
        // An app handler that throws must not break the SDK's own bookkeeping.
        reportHandlerError(name, err);
      }
    }
  }

  clear(): void {
    this.handlers.clear();
  }
}

function reportHandlerError(name: string, err: unknown): void {
  const c = (globalThis as { console?: { error?: (...a: unknown[]) => void } }).console;
  c?.error?.(`[portrait] handler for "${name}" threw:`, err);
}
