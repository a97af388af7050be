// Server restart: connections are closed with 1001 (going away); the SDK reconnects with backoff
// once the server is back and catches up from its cursor (versions survive the restart).
import test, { after } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT, TYPES, SESSION_EVENT } from '../dist/index.js';
import { startServer, sleep } from './helpers/server.mjs';
import { createChat, record, loginReady, waitFor } from './helpers/sdk.mjs';

let srv;
const open = [];
after(async () => {
  for (const c of open) await c.destroy();
  await srv?.stop();
});

test('server restart: close 1001, reconnect, catch-up, each change once', async () => {
  srv = await startServer();
  await srv.importAccounts([{ UserID: 't_a', Nick: 'A' }, 't_b']);
  const b = createChat(srv.base, { reconnectBaseMs: 100, reconnectMaxMs: 300 });
  open.push(b);
  await loginReady(b, 't_b');
  const closes = [];
  b.session.on(SESSION_EVENT.DISCONNECTED, (e) => closes.push(e.code));
  const events = record(b, EVENT.PROFILE_UPDATED);
  const net = record(b, EVENT.NET_STATE_CHANGE);
  await b.getUserProfile({ userIDList: ['t_a'] });
  await srv.set('t_a', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'A1' }]);
  await waitFor(() => events.length === 1, 5000, 'live event');

  await srv.restart(500);
  assert.deepEqual(closes.slice(0, 1), [1001], 'the server said "going away"');
  await srv.set('t_a', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'A2' }]);
  await srv.set('t_a', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'A3' }]);
  await waitFor(() => events.length >= 3, 10000, 'events after the restart');
  await waitFor(() => b.getNetState() === TYPES.NET_STATE_CONNECTED, 10000, 'connected');
  await sleep(400);
  assert.deepEqual(events.map((e) => e.data[0].nick), ['A1', 'A2', 'A3']);
  assert.ok(b.session.stats.connects >= 2);
  assert.ok(net.some((e) => e.data.state === TYPES.NET_STATE_DISCONNECTED));
  const [a] = (await b.getUserProfile({ userIDList: ['t_a'] })).data;
  assert.equal(a.nick, 'A3');
});

test('server data reset while the page is open: the SDK notices (head behind its cursor), re-reads and stays live', async () => {
  await srv.restart(0, { wipe: true });
  await srv.importAccounts([{ UserID: 't_b' }, { UserID: 't_c', Nick: 'C' }]);
  for (let i = 0; i < 15; i++) await srv.set('t_c', [{ Tag: 'Tag_Profile_IM_Level', Value: i }]);
  const b = createChat(srv.base, { reconnectBaseMs: 1500, reconnectMaxMs: 1500 });
  open.push(b);
  await loginReady(b, 't_b');
  const events = record(b, EVENT.PROFILE_UPDATED);
  await b.getUserProfile({ userIDList: ['t_c'] });
  await waitFor(() => b.session.isSynced(), 5000, 'synced');
  assert.ok(b.session.getCursor() >= 17);

  await srv.restart(0, { wipe: true }); // a fresh, empty store on the same address
  await srv.importAccounts([{ UserID: 't_b' }, { UserID: 't_c', Nick: 'C again' }]);
  await waitFor(() => b.session.stats.resets === 1, 10000, 'reset noticed');
  await waitFor(() => b.session.isSynced(), 10000, 'synced again');
  const [c] = (await b.getUserProfile({ userIDList: ['t_c'] })).data;
  assert.equal(c.nick, 'C again');
  assert.equal(c.level, 0);
  await srv.set('t_c', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'C live' }]);
  await waitFor(() => events.length === 1, 5000, 'live after the reset');
  assert.equal(events[0].data[0].nick, 'C live');
});

test('server data reset between page loads: the persisted state is dropped at login', async () => {
  const { MemoryStorage } = await import('../dist/index.js');
  await srv.restart(0, { wipe: true });
  await srv.importAccounts([{ UserID: 't_b' }, { UserID: 't_d', Nick: 'D' }]);
  for (let i = 0; i < 10; i++) await srv.set('t_b', [{ Tag: 'Tag_Profile_IM_Level', Value: i }]);
  const storage = new MemoryStorage();
  const b1 = createChat(srv.base, { storage });
  open.push(b1);
  await loginReady(b1, 't_b');
  await b1.getUserProfile({ userIDList: ['t_d'] });
  await waitFor(() => b1.session.isSynced(), 5000, 'synced');
  await b1.logout();

  await srv.restart(0, { wipe: true });
  await srv.importAccounts([{ UserID: 't_b' }, { UserID: 't_d', Nick: 'D again' }]);
  const b2 = createChat(srv.base, { storage });
  open.push(b2);
  const events = record(b2, EVENT.PROFILE_UPDATED);
  await loginReady(b2, 't_b');
  assert.deepEqual(b2.session.getSubscriptions(), [], 'stale subscriptions dropped');
  const [d] = (await b2.getUserProfile({ userIDList: ['t_d'] })).data;
  assert.equal(d.nick, 'D again');
  assert.equal((await b2.getMyProfile()).data.level, 0);
  await srv.set('t_d', [{ Tag: 'Tag_Profile_IM_Nick', Value: 'D live' }]);
  await waitFor(() => events.length === 1, 5000, 'live');
  assert.equal(events[0].data[0].nick, 'D live');
});
