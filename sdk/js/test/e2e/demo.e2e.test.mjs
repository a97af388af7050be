// End to end: the web demo in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core), two browser contexts = two users, against a real Portrait server.
//   A edits the nickname → B's page shows it without a reload;
//   B goes offline, A changes twice, B comes back → latest value, exactly 2 events;
//   B's page is closed, A changes twice, B reopens → latest value, exactly 2 events (persisted cursor).
// With PORTRAIT_SCREENSHOTS=1, saves a screenshot of the demo to docs/web-demo.png (not on
// every run: CI must not rewrite tracked files).
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, userSig, SDKAPPID, REPO } from '../helpers/server.mjs';
import { startDemoServer } from '../../../../examples/web-demo/serve.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SCREENSHOT = path.join(REPO, 'docs/web-demo.png');

const svgAvatar = (bg, letter) =>
  'data:image/svg+xml,' + encodeURIComponent(
    `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" rx="32" fill="${bg}"/>` +
    `<text x="32" y="42" font-family="sans-serif" font-size="28" text-anchor="middle" fill="#fff">${letter}</text></svg>`);

let srv;
let demo;
let browser;

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} missing: apt-get install -y chromium`);
  srv = await startServer();
  await srv.importAccounts([
    { UserID: 'alice', Nick: 'Alice', FaceUrl: svgAvatar('#e4572e', 'A') },
    { UserID: 'bob', Nick: 'Bob', FaceUrl: svgAvatar('#29335c', 'B') },
    { UserID: 'carol', Nick: 'Carol', FaceUrl: svgAvatar('#17bebb', 'C') },
    { UserID: 'dave', Nick: 'Dave' },
  ]);
  await srv.set('carol', [{ Tag: 'Tag_Profile_IM_SelfSignature', Value: 'Out hiking this week' }]);
  await srv.set('dave', [{ Tag: 'Tag_Profile_IM_SelfSignature', Value: 'Ask me about Rust' }]);
  await srv.set('bob', [{ Tag: 'Tag_Profile_IM_SelfSignature', Value: 'Watching my contacts update live' }, { Tag: 'Tag_Profile_IM_Gender', Value: 'Gender_Type_Male' }]);
  demo = await startDemoServer({ port: 0 });
  // No background traffic: the machine's network is closed except to the package registries.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-default-apps', '--disable-domain-reliability'],
  });
});

after(async () => {
  await browser?.close();
  await demo?.close();
  await srv?.stop();
});

function demoUrl(user, contacts) {
  const q = new URLSearchParams({
    server: srv.base, sdkappid: String(SDKAPPID), user, usersig: userSig(user), contacts, autologin: '1',
  });
  return `${demo.url}?${q}`;
}

async function openDemo(context, user, contacts) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${user} page error]`, e));
  await page.goto(demoUrl(user, contacts));
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
  return page;
}

const events = (page) => page.evaluate(() => window.__demo.events.map((e) => ({ userID: e.userID, nick: e.nick })));
const contactNick = (page, user) => page.locator(`#contact-list li[data-user="${user}"] .nick`);

async function saveNick(page, nick, extra = {}) {
  await page.fill('[data-testid="edit-nick"]', nick);
  for (const [name, value] of Object.entries(extra)) await page.fill(`#me-form [name="${name}"]`, value);
  await page.click('[data-testid="save"]');
  await page.waitForFunction((n) => window.__demo.me && window.__demo.me.nick === n, nick);
}

test('a wrong UserSig is refused with the server code, shown on the sign-in form', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const q = new URLSearchParams({ server: srv.base, sdkappid: String(SDKAPPID), user: 'alice', usersig: userSig('bob'), autologin: '1' });
  await page.goto(`${demo.url}?${q}`);
  await page.waitForFunction(() => document.querySelector('#signin-error').textContent.length > 0);
  assert.match(await page.textContent('#signin-error'), /^Sign-in failed: 70013 /);
  assert.equal(await page.isVisible('#app'), false);
  await ctx.close();
});

test('two users: live edit, offline catch-up, reopen catch-up, exact event counts', async () => {
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 820 } });
  const ctxB = await browser.newContext({ viewport: { width: 1100, height: 820 } });
  const pageA = await openDemo(ctxA, 'alice', 'bob');
  let pageB = await openDemo(ctxB, 'bob', 'alice,carol,dave');

  await assert.doesNotReject(contactNick(pageB, 'alice').waitFor());
  assert.equal(await contactNick(pageB, 'alice').textContent(), 'Alice');
  assert.equal(await pageB.textContent('[data-testid="net-state"]'), 'connected');

  // 1. A edits the nickname; B's page shows it without a reload.
  await saveNick(pageA, 'Alice in Wonderland', { selfSignature: 'Down the rabbit hole' });
  await pageB.waitForFunction(() =>
    document.querySelector('#contact-list li[data-user="alice"] .nick')?.textContent === 'Alice in Wonderland', null, { timeout: 10000 });
  assert.deepEqual(await events(pageB), [{ userID: 'alice', nick: 'Alice in Wonderland' }]);

  // 2. B goes offline; A changes twice; B comes back: the latest value, exactly the 2 missed events.
  await ctxB.setOffline(true);
  await pageB.waitForFunction(() => document.querySelector('[data-testid="net-state"]').textContent === 'disconnected');
  await saveNick(pageA, 'Alice (offline change 1)');
  await saveNick(pageA, 'Alice (offline change 2)');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await contactNick(pageB, 'alice').textContent(), 'Alice in Wonderland', 'nothing arrives while offline');
  await ctxB.setOffline(false);
  await pageB.waitForFunction(() =>
    document.querySelector('#contact-list li[data-user="alice"] .nick')?.textContent === 'Alice (offline change 2)', null, { timeout: 15000 });
  await new Promise((r) => setTimeout(r, 800));
  assert.deepEqual(await events(pageB), [
    { userID: 'alice', nick: 'Alice in Wonderland' },
    { userID: 'alice', nick: 'Alice (offline change 1)' },
    { userID: 'alice', nick: 'Alice (offline change 2)' },
  ], 'each missed change exactly once');
  const states = await pageB.evaluate(() => window.__demo.netStates);
  assert.deepEqual(states.slice(-3), ['disconnected', 'connecting', 'connected']);

  // 3. B's page is closed; A changes twice (and the avatar); B reopens: the persisted cursor
  //    (localStorage) brings exactly the 2 missed changes.
  await pageB.close();
  await saveNick(pageA, 'Alice (while B was away)');
  await saveNick(pageA, 'Alice', { avatar: svgAvatar('#f2a541', 'A') });
  pageB = await openDemo(ctxB, 'bob', '');
  await pageB.waitForFunction(() =>
    document.querySelector('#contact-list li[data-user="alice"] .nick')?.textContent === 'Alice', null, { timeout: 10000 });
  assert.deepEqual(await events(pageB), [
    { userID: 'alice', nick: 'Alice (while B was away)' },
    { userID: 'alice', nick: 'Alice' },
  ], 'exactly the changes missed while the page was closed');
  assert.equal(
    await pageB.locator('#contact-list li[data-user="alice"] img').getAttribute('src'),
    svgAvatar('#f2a541', 'A'),
    'the avatar updated too',
  );

  // 4. Still live after the reopen.
  await saveNick(pageA, 'Alice Liddell', { selfSignature: 'Curiouser and curiouser!' });
  await pageB.waitForFunction(() =>
    document.querySelector('#contact-list li[data-user="alice"] .nick')?.textContent === 'Alice Liddell', null, { timeout: 10000 });
  assert.equal((await events(pageB)).length, 3);

  if (process.env.PORTRAIT_SCREENSHOTS === '1') {
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await pageB.screenshot({ path: SCREENSHOT, fullPage: true });
  }
  await ctxA.close();
  await ctxB.close();
});
