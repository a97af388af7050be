// Change-log retention against a real Portrait server whose log keeps changes for ~2 s: a client
// offline for longer than that is told (error 49005) and re-reads what it shows, so its cache and
// the app still end up with the latest profiles.
import test, { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT, TYPES } from '../dist/index.js';
import { startServer, startProxy, sleep } from './helpers/server.mjs';
import { createChat, record, loginReady, waitFor } from './helpers/sdk.mjs';

let srv;
const open = [];
function chatOn(server) {
  const c = createChat(server);
  open.push(c);
  return c;
}

before(async () => {
  // 0.0005 hours = 1.8 s; the server prunes twice per window.
  srv = await startServer({ store: { change_retention_hours: 0.0005 } });
});
after(async () => {
  for (const c of open) await c.destroy();
  await srv?.stop();
});

test('offline past the retention: error 49005, the shown profiles are read again and announced once', async () => {
  await srv.importAccounts([{ UserID: 'r_ann', Nick: 'Ann' }, 'r_bo']);
  const proxy = await startProxy(srv.base);
  try {
    const ann = chatOn(srv.base);
    const bo = chatOn(proxy.base);
    await loginReady(ann, 'r_ann');
    await loginReady(bo, 'r_bo');
    const events = record(bo, EVENT.PROFILE_UPDATED);
    const net = record(bo, EVENT.NET_STATE_CHANGE);
    await bo.getUserProfile({ userIDList: ['r_ann'] });
    await ann.updateMyProfile({ nick: 'Ann 1' });
    await waitFor(() => events.length === 1, 5000, 'live event');

    proxy.cut();
    await waitFor(() => net.some((e) => e.data.state === TYPES.NET_STATE_DISCONNECTED), 5000, 'disconnect seen');
    await ann.updateMyProfile({ nick: 'Ann 2' });
    await ann.updateMyProfile({ nick: 'Ann 3', selfSignature: 'gone a while' });
    await sleep(3500); // past the retention window and a prune
    assert.equal(bo.session.stats.gaps, 0);

    proxy.restore();
    await waitFor(() => bo.session.stats.gaps === 1, 15000, 'the gap is reported');
    await waitFor(() => events.length === 2, 5000, 'the re-read is announced');
    await sleep(300);
    assert.equal(events.length, 2, 'announced once');
    assert.equal(events[1].data[0].userID, 'r_ann');
    assert.equal(events[1].data[0].nick, 'Ann 3');
    assert.equal(events[1].data[0].selfSignature, 'gone a while');
    const [cached] = (await bo.getUserProfile({ userIDList: ['r_ann'] })).data;
    assert.equal(cached.nick, 'Ann 3', 'the cache holds the latest profile');
    // Live changes go on over the same connection.
    await ann.updateMyProfile({ nick: 'Ann 4' });
    await waitFor(() => events.length === 3, 5000, 'live after the gap');
    assert.equal(events[2].data[0].nick, 'Ann 4');
  } finally {
    await proxy.close();
  }
});
