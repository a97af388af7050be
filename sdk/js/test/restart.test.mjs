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
