// End to end: the web console (/console/, served by the binary) in headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core) against a real Portrait server with an operator
// token. Signs in, creates an app (its key is shown once), adds a custom field, imports an
// account and edits its profile through the REST API (/v4, UserSig signed with the new app's
// key), and watches the change arrive on the open profile page without a reload; then kicks and
// deletes the account from the page.
// With PORTRAIT_SCREENSHOTS=1 it saves docs/console-apps.png and docs/console-profile.png (never
// on an ordinary run: CI must not rewrite tracked files).
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, BIN, REPO } from '../helpers/server.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOTS = process.env.PORTRAIT_SCREENSHOTS === '1';
const TOKEN = 'console-e2e-operator-token-0123456789abcdef';
const APP = 1400000777;
const ADMIN = 'administrator';

let srv;
let appKey; // the key of the console-created app, as the console showed it
let hook;
let hookCalls = 0;
let browser;
let page;
const pageErrors = [];

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`);
  srv = await startServer({ extra: `\n[operator]\ntoken = "${TOKEN}"\n` });
  // A webhook receiver that always fails, so the webhook page has failures to show.
  hook = http.createServer((req, res) => {
    hookCalls++;
    req.resume();
    res.writeHead(500).end('down for the test');
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-domain-reliability'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1180, height: 860 } });
  page = await ctx.newPage();
  page.setDefaultTimeout(8000);
  page.on('pageerror', (e) => pageErrors.push(e));
  // A refused call shows in the console as "Failed to load resource"; any other error is a bug.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) pageErrors.push(new Error(m.text()));
  });
});

after(async () => {
  await browser?.close();
  await srv?.stop();
  hook?.closeAllConnections();
  await new Promise((r) => (hook ? hook.close(r) : r()));
});

/** A UserSig for `user` of the console-created app, signed with its key by the real binary. */
const sigOf = (key, user) =>
  execFileSync(BIN, ['usersig', '--sdkappid', String(APP), '--key', key, '--user', user], { encoding: 'utf8' }).trim();

/** Calls the REST API (/v4) of the console-created app as its admin. */
async function rest(key, api, body) {
  const q = new URLSearchParams({ sdkappid: String(APP), identifier: ADMIN, usersig: sigOf(key, ADMIN), random: '1', contenttype: 'json' });
  const res = await fetch(`${srv.base}/v4/${api}?${q}`, { method: 'POST', body: JSON.stringify(body) });
  return res.json();
}

async function shot(name) {
  if (SCREENSHOTS) await page.screenshot({ path: path.join(REPO, 'docs', name), fullPage: true });
}

test('the console is served from the binary with strict headers', async () => {
  const res = await fetch(`${srv.base}/console/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/html/);
  assert.match(res.headers.get('content-security-policy'), /default-src 'self'/);
  assert.doesNotMatch(res.headers.get('content-security-policy'), /unsafe|\*|https?:/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.ok(res.headers.get('cache-control'));
  const js = await fetch(`${srv.base}/console/console.js`);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const again = await fetch(`${srv.base}/console/console.js`, { headers: { 'If-None-Match': js.headers.get('etag') } });
  assert.equal(again.status, 304);
  assert.equal((await fetch(`${srv.base}/console/nope.js`)).status, 404);
});

test('a wrong operator token is refused with the API\'s message', async () => {
  await page.goto(`${srv.base}/console/`);
  await page.fill('#token', 'not-the-token');
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#signin-error')?.textContent.length > 0);
  assert.notEqual((await page.textContent('#signin-error')).trim(), '');
  assert.equal(await page.isVisible('#nav'), false);
});

test('create an app and a field, then watch a profile change arrive; kick and delete', async () => {
  const t0 = Date.now();
  // Sign in.
  await page.goto(`${srv.base}/console/`);
  await page.fill('#token', TOKEN);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#create-app');

  // Create an app: its key is shown once.
  await page.fill('#create-app [name=sdkappid]', String(APP));
  await page.click('#create-app button[type=submit]');
  const key = (await page.textContent('[data-testid="new-key"]', { timeout: 8000 })).trim();
  assert.match(key, /^\S{16,}$/);
  appKey = key;
  await page.waitForSelector(`#apps tr[data-app="${APP}"]`);
  await shot('console-apps.png');

  // Settings: a webhook (If-Match on the revision shown).
  await page.click(`#apps tr[data-app="${APP}"] a`);
  await page.waitForSelector('#settings');
  await page.fill('#settings [name=webhook_url]', `http://127.0.0.1:${hook.address().port}/hook`);
  await page.fill('#settings [name=sensitive_words]', 'badword');
  await page.click('#settings button[type=submit]');
  await page.waitForFunction(() => /Settings saved/.test(document.querySelector('#flash')?.textContent || ''));
  assert.equal(await page.inputValue('#settings [name=sensitive_words]'), 'badword');

  // Add a custom field.
  await page.click('nav.tabs a:text("Custom fields")');
  await page.fill('#add-field [name=name]', 'Hobby');
  await page.selectOption('#add-field [name=type]', 'string');
  await page.fill('#add-field [name=max_length]', '64');
  await page.click('#add-field button[type=submit]');
  await page.waitForSelector('#fields tr[data-field="Tag_Profile_Custom_Hobby"]');

  // Import an account and set the new field through the REST API, signed with the app's key.
  let r = await rest(key, 'im_open_login_svc/account_import', { UserID: 'zoe', Nick: 'Zoe' });
  assert.equal(r.ErrorCode, 0, JSON.stringify(r));
  r = await rest(key, 'profile/portrait_set', { From_Account: 'zoe', ProfileItem: [{ Tag: 'Tag_Profile_Custom_Hobby', Value: 'chess' }] });
  assert.equal(r.ErrorCode, 0, JSON.stringify(r));

  // Find it by prefix and open its profile.
  await page.click('nav.tabs a:text("Accounts")');
  await page.fill('#account-search [name=prefix]', 'zo');
  await page.click('#account-search button[type=submit]');
  await page.click('#accounts li[data-user="zoe"] a');
  const value = (tag) => page.locator(`#profile tr[data-tag="${tag}"] td.value`);
  await value('Tag_Profile_Custom_Hobby').waitFor();
  assert.equal(await value('Tag_Profile_Custom_Hobby').textContent(), 'chess');
  const v1 = Number(await page.textContent('[data-testid="version"]'));

  // A change made elsewhere appears on the open page, with its new version, without a reload.
  await page.evaluate(() => { window.__noReload = true; });
  r = await rest(key, 'profile/portrait_set', {
    From_Account: 'zoe',
    ProfileItem: [{ Tag: 'Tag_Profile_IM_Nick', Value: 'Zoe Quinn' }, { Tag: 'Tag_Profile_Custom_Hobby', Value: 'go' }],
  });
  assert.equal(r.ErrorCode, 0, JSON.stringify(r));
  await page.waitForFunction(() =>
    document.querySelector('#profile tr[data-tag="Tag_Profile_IM_Nick"] td.value')?.textContent === 'Zoe Quinn', null, { timeout: 5000 });
  assert.equal(await value('Tag_Profile_Custom_Hobby').textContent(), 'go');
  const v2 = Number(await page.textContent('[data-testid="version"]'));
  assert.ok(v2 > v1, `version ${v2} after ${v1}`);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  await page.waitForSelector(`#changes tr[data-version="${v2}"]`);
  await shot('console-profile.png');

  // Kick: the account's UserSigs issued so far are refused.
  const zoeSig = sigOf(key, 'zoe');
  const mine = () => fetch(`${srv.base}/v1/profile/get_my_profile?${new URLSearchParams({ sdkappid: String(APP), identifier: 'zoe', usersig: zoeSig })}`,
    { method: 'POST', body: '{}' }).then((x) => x.json());
  assert.equal((await mine()).ErrorCode, 0);
  page.once('dialog', (d) => d.accept());
  await page.click('#kick');
  await page.waitForSelector('#kicked');
  assert.notEqual((await mine()).ErrorCode, 0, 'a UserSig issued before the kick is refused');

  // Delete: back to the account list, and the account is gone.
  page.once('dialog', (d) => d.accept());
  await page.click('#delete');
  await page.waitForSelector('#account-search');
  assert.match(await page.textContent('#flash'), /Deleted account zoe/);
  r = await rest(key, 'im_open_login_svc/account_check', { CheckItem: [{ UserID: 'zoe' }] });
  assert.equal(r.ResultItem[0].AccountStatus, 'NotImported', JSON.stringify(r));
  assert.deepEqual(pageErrors, []);
  console.log(`# console flow took ${Date.now() - t0} ms`);
});

test('rotate the key and disable then enable the app from its settings', async () => {
  await page.goto(`${srv.base}/console/#/apps/${APP}`);
  await page.waitForSelector('#settings');
  const check = (key) => rest(key, 'im_open_login_svc/account_check', { CheckItem: [{ UserID: ADMIN }] });
  // Rotate with no grace: the new key is shown once and signs; the old one no longer does.
  await page.fill('#key-card [name=grace_secs]', '0');
  page.once('dialog', (d) => d.accept());
  await page.click('#rotate-key');
  const rotated = (await page.textContent('#key [data-testid="key"]')).trim();
  assert.notEqual(rotated, appKey);
  assert.equal((await check(rotated)).ErrorCode, 0);
  assert.notEqual((await check(appKey)).ErrorCode, 0, 'the old key is refused after a rotation without grace');
  appKey = rotated;
  // Disable: every call of the app is refused; enable: it works again.
  page.once('dialog', (d) => d.accept());
  await page.click('#toggle-disabled');
  await page.waitForFunction(() => document.querySelector('#app-state')?.textContent === 'disabled');
  assert.notEqual((await check(appKey)).ErrorCode, 0, 'a disabled app refuses its admin');
  await page.click('#toggle-disabled');
  await page.waitForFunction(() => document.querySelector('#app-state')?.textContent === 'enabled');
  assert.equal((await check(appKey)).ErrorCode, 0);
  assert.deepEqual(pageErrors, []);
});

test('webhook delivery state and live rates render', async () => {
  // An unknown app: the API's message, and the page says it could not load.
  await page.goto(`${srv.base}/console/#/apps/1999999999`);
  await page.waitForFunction(() => /could not be loaded/.test(document.querySelector('#main')?.textContent || ''));
  assert.match(await page.textContent('#flash'), /1999999999|no such app|not found/i);
  await page.goto(`${srv.base}/console/#/apps/${APP}/webhook`);
  await page.waitForSelector('#webhook [data-testid="cursor"]');
  // The receiver fails every delivery: the failures show up on the page as they happen.
  await page.waitForSelector('#webhook tbody tr', { timeout: 8000 });
  assert.ok(hookCalls > 0);
  assert.match(await page.textContent('#webhook tbody'), /500/);
  await page.goto(`${srv.base}/console/#/live`);
  await page.waitForSelector('.tile[data-rate="requests"] .value', { timeout: 6000 });
  assert.ok(Number(await page.textContent('.tile[data-rate="requests"] .value')) > 0, 'the console\'s own calls count');
  assert.ok(await page.isVisible('#rates tr[data-api="/metrics"]'));
  assert.deepEqual(pageErrors, []);
});
