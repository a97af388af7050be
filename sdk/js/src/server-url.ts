/**
 * Where a facade connects: Portrait's `server` option, else the vendor's own option for a
 * private deployment (TencentCloudChat `proxyServer`), else the page's origin (Portrait served
 * from the app's own domain). Vendor-typed code never names `server`, so it must stay optional.
 */
export function resolveServer(options: { server?: unknown; proxyServer?: unknown }, who: string): string {
  if (typeof options.server === 'string' && options.server) return options.server;
  const proxy = options.proxyServer;
  if ((typeof proxy === 'string' || proxy instanceof String) && String(proxy)) {
    return String(proxy).replace(/^ws(s?):\/\//i, 'http$1://');
  }
  const loc = (globalThis as { location?: { protocol?: string; origin?: string } }).location;
  if (loc?.origin && /^https?:$/.test(loc.protocol ?? '')) return loc.origin;
  throw new TypeError(`${who}: no server: pass options.server (Portrait's base URL, e.g. https://profiles.example.com)`);
}
