// Starts a real Portrait server (target/release/portrait) for the tests: a temp data dir, a temp
// config with one app and the custom fields the NIM mapping uses, the port read from the
// "portrait: listening on http://ADDR" line. Also: UserSigs via `portrait usersig`, the admin
// REST API (/v4), and a TCP proxy that can cut the network between a client and the server.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, '../../../..');
export const BIN = process.env.PORTRAIT_BIN || path.join(REPO, 'target/release/portrait');

export const SDKAPPID = 1400000001;
export const KEY = 'sdk-js-test-key-0123456789abcdef0123456789abcdef0123456789abcdef';
export const ADMIN = 'administrator';

export function requireBinary() {
  if (!existsSync(BIN)) {
    throw new Error(`Portrait binary not found at ${BIN}: run \`cargo build --release -p portrait\` (or set PORTRAIT_BIN)`);
  }
}

const CONFIG = (dataDir, push, store, customFields, extra) => `
[server]
listen = "127.0.0.1:0"
data_dir = "${dataDir}"

[store]
${Object.entries(store).map(([k, v]) => `${k} = ${v}`).join('\n')}

[log]
filter = "warn"

[push]
${Object.entries(push).map(([k, v]) => `${k} = ${v}`).join('\n')}

[[apps]]
sdkappid = ${SDKAPPID}
key = "${KEY}"
admins = ["${ADMIN}"]
sensitive_words = ["forbiddenword"]

[apps.rate_limits]
enabled = false

[apps.client_rate_limits]
user_reads = 0
user_writes = 0
app_reads = 0
app_writes = 0

[[apps.custom_fields]]
name = "Tag_Profile_Custom_Email"
type = "string"
max_length = 100

[[apps.custom_fields]]
name = "Tag_Profile_Custom_Tel"
type = "string"
max_length = 32

[[apps.custom_fields]]
name = "Tag_Profile_Custom_Ex"
type = "string"
max_length = 500

[[apps.custom_fields]]
name = "Tag_Profile_Custom_Score"
type = "integer"
read = ["user", "admin"]
write = ["admin"]

[[apps.custom_fields]]
name = "Tag_Profile_Custom_Secret"
type = "string"
read = ["admin"]
write = ["admin"]
${customFields.map((f) => `
[[apps.custom_fields]]
${Object.entries(f).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n')}
`).join('')}
${extra}`;

const sigCache = new Map();

/** A UserSig for `user`, minted by the real binary (`portrait usersig`). */
export function userSig(user, expire) {
  const k = `${user}:${expire ?? ''}`;
  if (!sigCache.has(k) || expire !== undefined) {
    const args = ['usersig', '--sdkappid', String(SDKAPPID), '--key', KEY, '--user', user];
    if (expire !== undefined) args.push('--expire', String(expire));
    const sig = execFileSync(BIN, args, { encoding: 'utf8' }).trim();
    if (expire !== undefined) return sig;
    sigCache.set(k, sig);
  }
  return sigCache.get(k);
}

/**
 * Starts a server (`customFields`: more `[[apps.custom_fields]]` tables, e.g. `{name, type}`;
 * `extra`: more TOML appended to the config, e.g. an `[operator]` table); resolves to {base, stop(), admin(api, body), importAccounts(list), set(user, items), kick(user), remove(users)}.
 */
export async function startServer({ push = {}, store = {}, customFields = [], extra = '' } = {}) {
  requireBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'portrait-sdk-js-'));
  const cfg = path.join(dir, 'portrait.toml');
  writeFileSync(cfg, CONFIG(path.join(dir, 'data'), { poll_interval_ms: 200, ...push }, store, customFields, extra));
  let child;
  let stderr = '';
  async function launch(listen) {
    const args = ['serve', '--config', cfg];
    if (listen) args.push('--listen', listen);
    child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
    child.stderr.on('data', (d) => { stderr += d; if (stderr.length > 20000) stderr = stderr.slice(-10000); });
    const url = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`server did not start in 20 s\n${out}\n${stderr}`)), 20000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /portrait: listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}\n${out}\n${stderr}`));
      });
    });
    child.removeAllListeners('exit');
    return url;
  }
  async function terminate() {
    if (child.exitCode === null && child.signalCode === null) {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    }
  }
  const base = await launch();

  async function admin(api, body) {
    const q = new URLSearchParams({
      sdkappid: String(SDKAPPID), identifier: ADMIN, usersig: userSig(ADMIN),
      random: String(Math.floor(Math.random() * 4294967295)), contenttype: 'json',
    });
    const res = await fetch(`${base}/v4/${api}?${q}`, { method: 'POST', body: JSON.stringify(body) });
    return res.json();
  }

  const srv = {
    base,
    dir,
    get stderr() { return stderr; },
    admin,
    /** Imports accounts ({UserID, Nick?, FaceUrl?} or plain IDs), 100 per call. */
    async importAccounts(list) {
      const items = list.map((a) => (typeof a === 'string' ? { UserID: a } : a));
      for (let i = 0; i < items.length; i += 100) {
        const r = await admin('im_open_login_svc/multiaccount_import', { AccountList: items.slice(i, i + 100) });
        if (r.ErrorCode !== 0) throw new Error(`import failed: ${JSON.stringify(r)}`);
      }
    },
    /** Admin portrait_set. */
    async set(user, items) {
      const r = await admin('profile/portrait_set', { From_Account: user, ProfileItem: items });
      if (r.ErrorCode !== 0) throw new Error(`portrait_set failed: ${JSON.stringify(r)}`);
      return r;
    },
    async kick(user) {
      return admin('im_open_login_svc/kick', { UserID: user });
    },
    async remove(users) {
      return admin('im_open_login_svc/account_delete', { DeleteItem: users.map((u) => ({ UserID: u })) });
    },
    /** Stops the server (SIGTERM: connections get close 1001) and starts it again on the same address and data. */
    async restart(downMs = 0, { wipe = false } = {}) {
      await terminate();
      if (wipe) rmSync(path.join(dir, 'data'), { recursive: true, force: true });
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      await launch(new URL(base).host);
    },
    async stop() {
      await terminate();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return srv;
}

/**
 * A TCP proxy in front of `target` (http://host:port). `cut()` drops every connection and
 * refuses new ones (a network outage); `restore()` ends the outage.
 */
export async function startProxy(target) {
  const u = new URL(target);
  const sockets = new Set();
  let down = false;
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(u.port), u.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${server.address().port}`,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    async close() {
      this.cut();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Resolves when `pred()` is true (polling), rejects after `ms`. */
export async function waitFor(pred, ms = 10000, what = 'condition') {
  const t0 = Date.now();
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
