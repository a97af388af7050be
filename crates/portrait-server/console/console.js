// The Portrait web console: a hash-routed page per concern, over the operator API (api.js).
//   #/apps                          apps, create one (its key is shown once)
//   #/apps/<id>                     an app's settings, disable/enable, key and rotation
//   #/apps/<id>/fields              custom fields: list, add, hide/show
//   #/apps/<id>/accounts?prefix=    accounts by UserID prefix, paged
//   #/apps/<id>/accounts/<user>     a profile: fields, version, changes, kick, delete (live, 1 s)
//   #/apps/<id>/webhook             webhook delivery state (live, 2 s)
//   #/live                          request and push rates from two scrapes of /metrics
// A page's pollers stop when the operator goes elsewhere (each route has its generation).
import { h, fill, table, when, show, lines } from './dom.js';
import { api, token, enc, scrape } from './api.js';

const main = document.getElementById('main');
const flashEl = document.getElementById('flash');
const nav = document.getElementById('nav');
const signoutBtn = document.getElementById('signout');
let generation = 0;
let pendingFlash = null;

// ---- messages ---------------------------------------------------------------------------------

function flash(message, kind = 'error') {
  flashEl.hidden = false;
  flashEl.dataset.kind = kind;
  flashEl.textContent = message;
  if (kind === 'info') {
    const text = message;
    setTimeout(() => { if (flashEl.textContent === text) clearFlash(); }, 8000);
  }
}

function clearFlash() {
  flashEl.hidden = true;
  flashEl.textContent = '';
}

/** Shows a failure; a refused token goes back to the sign-in page. */
function fail(e) {
  if (e.status === 401) {
    token.clear();
    signin(e.message || 'The operator token was refused.');
    return;
  }
  flash(e.message || String(e));
}

/** Runs `fn` as a button's action: disabled while it runs, failures shown. */
function action(button, fn) {
  return async (ev) => {
    ev?.preventDefault();
    button.disabled = true;
    try {
      clearFlash();
      await fn();
    } catch (e) {
      fail(e);
    } finally {
      button.disabled = false;
    }
  };
}

/** Calls `fn` now and then every `ms` while the page is open. */
function every(page, ms, fn) {
  const tick = async () => {
    if (!page.alive()) return;
    try {
      await fn();
    } catch (e) {
      if (page.alive()) fail(e);
    }
    if (page.alive()) setTimeout(tick, ms);
  };
  return tick();
}

function go(hash, message) {
  pendingFlash = message || null;
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---- routing ----------------------------------------------------------------------------------

function route() {
  const g = ++generation;
  const page = { alive: () => g === generation };
  clearFlash();
  if (pendingFlash) {
    flash(pendingFlash, 'info');
    pendingFlash = null;
  }
  if (!token.get()) return signin();
  nav.hidden = false;
  signoutBtn.hidden = false;
  const [path, query] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const q = new URLSearchParams(query || '');
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.nav === (parts[0] || 'apps'));
  let done;
  if (parts[0] === 'live') done = livePage(page);
  else if (parts[0] === 'apps' && parts[1]) {
    const id = parts[1];
    if (parts[2] === 'fields') done = fieldsPage(page, id);
    else if (parts[2] === 'accounts' && parts[3] !== undefined) done = profilePage(page, id, parts[3]);
    else if (parts[2] === 'accounts') done = accountsPage(page, id, q);
    else if (parts[2] === 'webhook') done = webhookPage(page, id);
    else done = settingsPage(page, id);
  } else done = appsPage(page);
  Promise.resolve(done).catch((e) => {
    if (!page.alive()) return;
    fail(e);
    // A page that could not load says so where it would have been.
    for (const p of main.querySelectorAll('p.muted')) {
      if (p.textContent === 'Loading…') p.textContent = 'This page could not be loaded (see the message above).';
    }
  });
}

window.addEventListener('hashchange', route);
signoutBtn.addEventListener('click', () => {
  token.clear();
  generation++;
  location.hash = '';
  signin('Signed out.');
});

// ---- sign in ----------------------------------------------------------------------------------

function signin(message = '') {
  generation++;
  nav.hidden = true;
  signoutBtn.hidden = true;
  clearFlash();
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'current-password', required: true, autofocus: true });
  const error = h('p', { class: 'error', id: 'signin-error', role: 'alert' }, message);
  const submit = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'card narrow', id: 'signin' },
    h('h1', {}, 'Sign in'),
    h('input', { type: 'text', name: 'username', autocomplete: 'username', value: 'operator', hidden: true }),
    h('p', { class: 'muted' }, 'The operator token from the server\u2019s configuration ([operator] token or token_file). It is kept in this tab only.'),
    h('label', { for: 'token' }, 'Operator token'), input, error, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    token.set(input.value.trim());
    try {
      await api('GET', '/apps');
      go(location.hash && location.hash !== '#/' ? location.hash : '#/apps');
    } catch (e) {
      token.clear();
      error.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });
  fill(main, form);
  input.focus();
}

// ---- apps -------------------------------------------------------------------------------------

async function appsPage(page) {
  const list = h('div', { id: 'apps' }, h('p', { class: 'muted' }, 'Loading…'));
  const created = h('div', { id: 'created' });
  const f = {
    sdkappid: h('input', { name: 'sdkappid', type: 'number', min: 1, placeholder: 'chosen for you' }),
    admins: h('input', { name: 'admins', value: 'administrator' }),
    words: h('input', { name: 'sensitive_words', placeholder: 'none' }),
    webhook: h('input', { name: 'webhook', type: 'url', placeholder: 'none (https://…)' }),
  };
  const submit = h('button', { type: 'submit' }, 'Create app');
  const form = h('form', { class: 'card', id: 'create-app' },
    h('h2', {}, 'Create an app'),
    h('div', { class: 'grid' },
      h('label', {}, 'SDKAppID', f.sdkappid),
      h('label', {}, 'Admins (comma-separated)', f.admins),
      h('label', {}, 'Sensitive words (comma-separated)', f.words),
      h('label', {}, 'Webhook URL', f.webhook)),
    submit);
  form.addEventListener('submit', action(submit, async () => {
    const body = {};
    if (f.sdkappid.value) body.sdkappid = Number(f.sdkappid.value);
    if (f.admins.value.trim()) body.admins = lines(f.admins.value);
    if (f.words.value.trim()) body.sensitive_words = lines(f.words.value);
    if (f.webhook.value.trim()) body.webhook = { url: f.webhook.value.trim() };
    const res = await api('POST', '/apps', body);
    const id = res.app.sdkappid;
    fill(created, h('div', { class: 'card notice', dataset: { app: id } },
      h('h2', {}, `App ${id} created`),
      h('p', {}, 'Its secret key signs every UserSig of the app. It is shown here once \u2014 copy it now:'),
      h('code', { class: 'key', 'data-testid': 'new-key' }, res.key),
      h('p', {}, h('a', { href: `#/apps/${id}` }, 'Open its settings \u2192'))));
    form.reset();
    f.admins.value = 'administrator';
    await load();
  }));
  fill(main, h('h1', {}, 'Apps'), created, list, form);

  async function load() {
    const { apps } = await api('GET', '/apps');
    if (!page.alive()) return;
    fill(list, apps.length === 0 ? h('p', { class: 'muted' }, 'No apps yet.') : table(
      ['SDKAppID', 'State', 'Source', 'Admins', 'Custom fields', 'Webhook'],
      apps.map((a) => h('tr', { dataset: { app: a.sdkappid } },
        h('td', {}, h('a', { href: `#/apps/${a.sdkappid}` }, String(a.sdkappid))),
        h('td', {}, a.disabled ? h('span', { class: 'badge off' }, 'disabled') : h('span', { class: 'badge on' }, 'enabled')),
        h('td', {}, a.source),
        h('td', {}, a.admins.join(', ')),
        h('td', {}, h('a', { href: `#/apps/${a.sdkappid}/fields` }, String(a.custom_fields.length))),
        h('td', {}, a.webhook ? a.webhook.url : '—'))),
      { class: 'list' }));
  }
  await load();
}

/** The header and tabs of an app's pages; returns the element the page fills. */
function appFrame(id, tab) {
  const tabs = [['settings', '', 'Settings'], ['fields', '/fields', 'Custom fields'], ['accounts', '/accounts', 'Accounts'], ['webhook', '/webhook', 'Webhook']];
  const body = h('div', { id: `page-${tab}` }, h('p', { class: 'muted' }, 'Loading…'));
  fill(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/apps' }, 'Apps'), ' / ', `App ${id}`),
    h('h1', {}, `App ${id}`),
    h('nav', { class: 'tabs' }, tabs.map(([t, suffix, label]) =>
      h('a', { href: `#/apps/${id}${suffix}`, class: t === tab ? 'active' : '' }, label))),
    body);
  return body;
}

// ---- an app's settings ------------------------------------------------------------------------

async function settingsPage(page, id) {
  const body = appFrame(id, 'settings');
  const keyBox = h('div', { id: 'key' });
  let app = await api('GET', `/apps/${enc(id)}`);
  if (!page.alive()) return;

  const reload = async () => {
    app = await api('GET', `/apps/${enc(id)}`);
    if (page.alive()) render();
  };
  const patch = async (p) => {
    try {
      app = await api('PATCH', `/apps/${enc(id)}`, p, { 'If-Match': `"${app.revision}"` });
    } catch (e) {
      if (e.status === 412) {
        await reload();
        throw new Error(`${e.message} The settings were changed elsewhere; they are reloaded now \u2014 make your change again.`);
      }
      throw e;
    }
    if (page.alive()) render();
  };

  function render() {
    const webhook = app.webhook || null;
    const f = {
      admins: h('textarea', { name: 'admins', rows: 3 }, app.admins.join('\n')),
      words: h('textarea', { name: 'sensitive_words', rows: 3 }, app.sensitive_words.join('\n')),
      rlEnabled: h('input', { type: 'checkbox', name: 'rate_limits_enabled', checked: app.rate_limits.enabled }),
      rlPerApi: h('textarea', { name: 'rate_limits', rows: 4, placeholder: 'portrait_get = 100' },
        Object.entries(app.rate_limits).filter(([k]) => k !== 'enabled').map(([k, v]) => `${k} = ${v}`).join('\n')),
      skew: h('input', { type: 'number', min: 0, name: 'usersig_clock_skew_secs', value: app.usersig_clock_skew_secs }),
      webhook: h('input', { type: 'url', name: 'webhook_url', value: webhook ? webhook.url : '', placeholder: 'none' }),
    };
    const client = {};
    for (const k of ['user_reads', 'user_writes', 'app_reads', 'app_writes']) {
      client[k] = h('input', { type: 'number', min: 0, name: `client_${k}`, value: app.client_rate_limits[k] });
    }
    const save = h('button', { type: 'submit' }, 'Save settings');
    const form = h('form', { class: 'card', id: 'settings' },
      h('h2', {}, 'Settings'),
      h('div', { class: 'grid' },
        h('label', {}, 'Admins (one per line)', f.admins),
        h('label', {}, 'Sensitive words (one per line)', f.words),
        h('div', {},
          h('label', { class: 'inline' }, f.rlEnabled, ' REST API rate limits on'),
          h('label', {}, 'Per API, calls per second (name = n)', f.rlPerApi)),
        h('fieldset', {}, h('legend', {}, 'Client API calls per second (0 = unlimited)'),
          Object.entries(client).map(([k, el]) => h('label', { class: 'small' }, k.replace('_', ' '), el))),
        h('label', {}, 'UserSig clock skew, seconds', f.skew),
        h('label', {}, 'Webhook URL (empty = none)', f.webhook)),
      save);
    form.addEventListener('submit', action(save, async () => {
      const perApi = {};
      for (const line of lines(f.rlPerApi.value.replace(/,/g, '\n'))) {
        const m = /^([\w.]+)\s*[=:]\s*(\d+)$/.exec(line);
        if (!m) throw new Error(`Rate limit "${line}": write it as name = calls per second.`);
        perApi[m[1]] = Number(m[2]);
      }
      const p = {
        admins: lines(f.admins.value),
        sensitive_words: lines(f.words.value),
        rate_limits: { enabled: f.rlEnabled.checked, ...perApi },
        client_rate_limits: Object.fromEntries(Object.entries(client).map(([k, el]) => [k, Number(el.value)])),
        usersig_clock_skew_secs: Number(f.skew.value),
      };
      const url = f.webhook.value.trim();
      if (!url && webhook) p.webhook = null;
      else if (url && url !== webhook?.url) p.webhook = { ...(webhook || {}), url };
      await patch(p);
      flash('Settings saved.', 'info');
    }));

    const toggle = h('button', { type: 'button', id: 'toggle-disabled', class: app.disabled ? '' : 'danger' }, app.disabled ? 'Enable app' : 'Disable app');
    toggle.addEventListener('click', action(toggle, async () => {
      if (!app.disabled && !confirm(`Disable app ${id}? Every call of its admins and users is refused until it is enabled again (its data is kept).`)) return;
      await patch({ disabled: !app.disabled });
      flash(app.disabled ? 'App disabled.' : 'App enabled.', 'info');
    }));

    const showKey = h('button', { type: 'button', id: 'show-key' }, 'Show key');
    showKey.addEventListener('click', action(showKey, async () => {
      const k = await api('GET', `/apps/${enc(id)}/key`);
      fill(keyBox, keyView(k));
    }));
    const grace = h('input', { type: 'number', min: 0, name: 'grace_secs', value: 86400 });
    const rotate = h('button', { type: 'button', id: 'rotate-key', class: 'danger' }, 'Rotate key');
    rotate.addEventListener('click', action(rotate, async () => {
      if (!confirm(`Rotate the key of app ${id}? UserSigs signed with the old key verify for ${grace.value} more seconds.`)) return;
      const k = await api('POST', `/apps/${enc(id)}/rotate-key`, { grace_secs: Number(grace.value) });
      fill(keyBox, keyView(k, 'The new key (shown once; copy it now):'));
      await reload();
    }));

    fill(body,
      h('div', { class: 'card summary' },
        h('p', {},
          app.disabled ? h('span', { class: 'badge off', id: 'app-state' }, 'disabled') : h('span', { class: 'badge on', id: 'app-state' }, 'enabled'),
          ` source: ${app.source} \u00b7 revision ${app.revision} \u00b7 ${app.custom_fields.length} custom fields`,
          app.previous_key_valid_until ? ` \u00b7 previous key verifies until ${when(app.previous_key_valid_until * 1000)}` : ''),
        toggle),
      form,
      h('div', { class: 'card', id: 'key-card' },
        h('h2', {}, 'Secret key'),
        h('p', { class: 'muted' }, 'UserSigs are signed with it. Rotating it keeps the old key valid for a grace period.'),
        h('div', { class: 'row' }, showKey, h('label', { class: 'inline' }, 'Grace, seconds ', grace), rotate),
        keyBox));
  }
  render();
}

function keyView(k, title = 'The current key:') {
  return h('div', { class: 'notice' },
    h('p', {}, title),
    h('code', { class: 'key', 'data-testid': 'key' }, k.key),
    k.previous_key_valid_until ? h('p', { class: 'muted' }, `The previous key verifies until ${when(k.previous_key_valid_until * 1000)}.`) : '');
}

// ---- custom fields ----------------------------------------------------------------------------

async function fieldsPage(page, id) {
  const body = appFrame(id, 'fields');
  const list = h('div', { id: 'fields' });
  const f = {
    name: h('input', { name: 'name', required: true, placeholder: 'Tag_Profile_Custom_Hobby' }),
    type: h('select', { name: 'type' }, h('option', { value: 'string' }, 'string'), h('option', { value: 'integer' }, 'integer')),
    max: h('input', { name: 'max_length', type: 'number', min: 1, max: 500, value: 500 }),
  };
  const who = (name) => ['user', 'admin'].map((w) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: `${name}_${w}`, value: w, checked: true }), ` ${w}`));
  const read = who('read');
  const write = who('write');
  const picked = (labels) => labels.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
  const submit = h('button', { type: 'submit' }, 'Add field');
  const form = h('form', { class: 'card', id: 'add-field' },
    h('h2', {}, 'Add a custom field'),
    h('p', { class: 'muted' }, 'A field\u2019s name and type never change once added, and a field is never deleted, only hidden.'),
    h('div', { class: 'grid' },
      h('label', {}, 'Name', f.name),
      h('label', {}, 'Type', f.type),
      h('label', {}, 'Byte limit (strings)', f.max),
      h('fieldset', {}, h('legend', {}, 'Read by'), read),
      h('fieldset', {}, h('legend', {}, 'Written by'), write)),
    submit);
  form.addEventListener('submit', action(submit, async () => {
    let name = f.name.value.trim();
    if (!name.startsWith('Tag_')) name = `Tag_Profile_Custom_${name}`;
    const add = { name, type: f.type.value, read: picked(read), write: picked(write) };
    if (f.type.value === 'string') add.max_length = Number(f.max.value);
    await api('POST', `/apps/${enc(id)}/fields`, add);
    form.reset();
    for (const l of [...read, ...write]) l.firstChild.checked = true;
    flash(`Field ${name} added.`, 'info');
    await load();
  }));
  fill(body, list, form);

  async function load() {
    const { fields } = await api('GET', `/apps/${enc(id)}/fields`);
    if (!page.alive()) return;
    fill(list, fields.length === 0 ? h('p', { class: 'muted card' }, 'No custom fields yet.') : table(
      ['Name', 'Type', 'Byte limit', 'Read by', 'Written by', 'State', ''],
      fields.map((fv) => {
        const btn = h('button', { type: 'button', class: 'small' }, fv.hidden ? 'Show' : 'Hide');
        btn.addEventListener('click', action(btn, async () => {
          await api('PATCH', `/apps/${enc(id)}/fields/${enc(fv.name)}`, { hidden: !fv.hidden });
          await load();
        }));
        return h('tr', { dataset: { field: fv.name } },
          h('td', {}, h('code', {}, fv.name)), h('td', {}, fv.kind || fv.type),
          h('td', {}, (fv.kind || fv.type) === 'string' ? String(fv.max_length) : '—'),
          h('td', {}, fv.read.join(', ') || 'nobody'), h('td', {}, fv.write.join(', ') || 'nobody'),
          h('td', { class: 'state' }, fv.hidden ? h('span', { class: 'badge off' }, 'hidden') : h('span', { class: 'badge on' }, 'visible')),
          h('td', {}, btn));
      }),
      { class: 'list' }));
  }
  await load();
}

// ---- accounts ---------------------------------------------------------------------------------

const PAGE = 50;

async function accountsPage(page, id, q) {
  const body = appFrame(id, 'accounts');
  const prefix = q.get('prefix') || '';
  const after = q.get('after') || '';
  const input = h('input', { type: 'search', name: 'prefix', value: prefix, placeholder: 'UserID prefix (empty = all)' });
  const search = h('button', { type: 'submit' }, 'Search');
  const form = h('form', { class: 'row', id: 'account-search' }, input, search);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    go(`#/apps/${id}/accounts?${new URLSearchParams({ prefix: input.value.trim() })}`);
  });
  const list = h('div', { id: 'accounts' }, h('p', { class: 'muted' }, 'Loading…'));
  fill(body, h('div', { class: 'card' }, form, list));
  const params = new URLSearchParams({ prefix, limit: String(PAGE) });
  if (after) params.set('after', after);
  const res = await api('GET', `/apps/${enc(id)}/accounts?${params}`);
  if (!page.alive()) return;
  const link = (a) => `#/apps/${id}/accounts?${new URLSearchParams(a)}`;
  fill(list,
    res.accounts.length === 0
      ? h('p', { class: 'muted' }, prefix ? `No account starts with \u201c${prefix}\u201d${after ? ' after this point' : ''}.` : 'No accounts.')
      : h('ul', { class: 'accounts' }, res.accounts.map((u) =>
        h('li', { dataset: { user: u } }, h('a', { href: `#/apps/${id}/accounts/${enc(u)}` }, u)))),
    h('p', { class: 'pager' },
      after ? h('a', { href: link({ prefix }), id: 'first-page' }, '\u2190 First page') : '',
      res.next ? h('a', { href: link({ prefix, after: res.next }), id: 'next-page' }, 'Next page \u2192') : ''));
  input.focus();
}

// ---- a profile (live) -------------------------------------------------------------------------

async function profilePage(page, id, user) {
  const body = appFrame(id, 'accounts');
  const back = h('p', { class: 'crumbs' }, h('a', { href: `#/apps/${id}/accounts?${new URLSearchParams({ prefix: user })}` }, '\u2190 Accounts'));
  const live = h('span', { class: 'live', id: 'live' }, 'live');
  const view = h('div', { id: 'account' });
  const kick = h('button', { type: 'button', id: 'kick' }, 'Kick');
  const del = h('button', { type: 'button', id: 'delete', class: 'danger' }, 'Delete account');
  fill(body, back, h('div', { class: 'card' },
    h('div', { class: 'row spread' }, h('h2', {}, user), h('div', { class: 'row' }, live, kick, del)),
    view));
  const path = `/apps/${enc(id)}/accounts/${enc(user)}`;
  let last = null;

  kick.addEventListener('click', action(kick, async () => {
    if (!confirm(`Kick ${user}? Every UserSig issued to it so far is revoked and its connections are closed.`)) return;
    await api('POST', `${path}/kick`);
    flash(`Kicked ${user}: its UserSigs issued so far are revoked.`, 'info');
    await refresh();
  }));
  del.addEventListener('click', action(del, async () => {
    if (!confirm(`Delete account ${user} and its profile? This cannot be undone.`)) return;
    await api('DELETE', path);
    go(`#/apps/${id}/accounts`, `Deleted account ${user}.`);
  }));

  async function refresh() {
    let a;
    try {
      a = await api('GET', path);
    } catch (e) {
      if (e.status !== 404) throw e;
      a = { missing: e.message };
    }
    if (!page.alive()) return;
    live.textContent = `live \u00b7 ${new Date().toLocaleTimeString()}`;
    const text = JSON.stringify(a);
    if (text === last) return;
    last = text;
    if (a.missing) {
      kick.disabled = del.disabled = true;
      fill(view, h('p', { class: 'error', id: 'missing' }, a.missing));
      return;
    }
    kick.disabled = del.disabled = false;
    const tags = Object.keys(a.profile);
    fill(view,
      h('p', { class: 'facts' },
        'Version ', h('strong', { 'data-testid': 'version' }, String(a.version)),
        a.kicked_until ? h('span', { class: 'badge off', id: 'kicked' }, `kicked: UserSigs before ${when(a.kicked_until * 1000)} are revoked`) : ''),
      h('h3', {}, 'Profile'),
      tags.length === 0 ? h('p', { class: 'muted' }, 'No fields set.') : table(['Field', 'Value'],
        tags.map((t) => h('tr', { dataset: { tag: t } }, h('td', {}, h('code', {}, t)), h('td', { class: 'value' }, show(a.profile[t])))),
        { id: 'profile', class: 'list' }),
      h('h3', {}, 'Recent changes'),
      a.changes.length === 0 ? h('p', { class: 'muted' }, 'None in the change log.') : table(
        ['Version', 'When', 'Kind', 'By', 'From', 'Fields'],
        a.changes.map((c) => h('tr', { dataset: { version: c.version } },
          h('td', {}, String(c.version)), h('td', {}, when(c.at_ms)), h('td', {}, c.kind), h('td', {}, c.operator),
          h('td', {}, c.client_ip || '—'),
          h('td', {}, Object.entries(c.items || {}).map(([k, v]) => h('div', {}, h('code', {}, k.replace(/^Tag_Profile_(IM_|Custom_)?/, '')), ' = ', show(v)))))),
        { id: 'changes', class: 'list' }));
  }
  await every(page, 1000, refresh);
}

// ---- webhook ----------------------------------------------------------------------------------

async function webhookPage(page, id) {
  const body = appFrame(id, 'webhook');
  const live = h('span', { class: 'live' }, 'live');
  const view = h('div', { id: 'webhook' });
  fill(body, h('div', { class: 'card' }, h('div', { class: 'row spread' }, h('h2', {}, 'Webhook delivery on this node'), live), view));
  await every(page, 2000, async () => {
    const w = await api('GET', `/apps/${enc(id)}/webhook`);
    if (!page.alive()) return;
    live.textContent = `live \u00b7 ${new Date().toLocaleTimeString()}`;
    if (!w.configured) {
      fill(view, h('p', { class: 'muted' }, 'No webhook is configured for this app (set one in its settings).'));
      return;
    }
    fill(view,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Cursor'), h('dd', { 'data-testid': 'cursor' }, String(w.cursor)),
        h('dt', {}, 'Head'), h('dd', {}, String(w.head)),
        h('dt', {}, 'Lag'), h('dd', { 'data-testid': 'lag', class: w.lag > 0 ? 'warn' : '' }, `${w.lag} change${w.lag === 1 ? '' : 's'}`),
        h('dt', {}, 'Delivering'), h('dd', {}, w.delivering_here ? 'here (this node holds the lease)' : 'on another node')),
      h('h3', {}, 'Recent failures'),
      w.recent_failures.length === 0 ? h('p', { class: 'muted' }, 'None.') : table(['When', 'Account', 'Version', 'Error'],
        w.recent_failures.map((x) => [when(x.at_ms), x.user_id, String(x.version), x.error]), { class: 'list' }));
  });
}

// ---- live rates -------------------------------------------------------------------------------

const HISTORY = 60;

async function livePage(page) {
  const view = h('div', { id: 'rates' }, h('p', { class: 'muted' }, 'Measuring (two scrapes of /metrics, 2 s apart)…'));
  fill(main, h('h1', {}, 'Live rates'), h('p', { class: 'muted' }, 'Per second on this node, from /metrics every 2 s.'), view);
  let prev = null;
  const history = { requests: [], push: [] };
  await every(page, 2000, async () => {
    const cur = await scrape();
    if (!page.alive()) return;
    if (prev) render(rates(prev, cur), cur);
    prev = cur;
  });

  function render(r, cur) {
    history.requests = [...history.requests, r.requests].slice(-HISTORY);
    history.push = [...history.push, r.pushed].slice(-HISTORY);
    const gauge = (name) => cur.samples.filter((s) => s.name === name).reduce((t, s) => t + s.value, 0);
    const apis = Object.entries(r.byApi).sort((a, b) => b[1].total - a[1].total || a[0].localeCompare(b[0]));
    fill(view,
      h('div', { class: 'tiles' },
        tile('Requests/s', r.requests, history.requests, 'requests'),
        tile('Errors/s', r.errors, null, 'errors'),
        tile('Push events sent/s', r.pushed, history.push, 'push'),
        tile('Changes read by feeds/s', r.changes, null, 'changes'),
        tile('WebSocket sessions', gauge('portrait_ws_connections'), null, 'ws', true),
        tile('Requests in flight', gauge('portrait_http_requests_in_flight'), null, 'inflight', true)),
      h('h2', {}, 'Requests by API'),
      table(['API', 'Requests/s', 'Refused or failed/s'],
        apis.map(([api, v]) => h('tr', { dataset: { api } }, h('td', {}, h('code', {}, api)), h('td', {}, fmt(v.total)), h('td', {}, fmt(v.errors)))),
        { class: 'list' }));
  }
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

function tile(label, value, series, id, whole = false) {
  const spark = h('div', { class: 'spark' });
  if (series) {
    const max = Math.max(1e-9, ...series);
    for (const v of series) {
      const bar = h('span');
      bar.style.height = `${Math.round((v / max) * 100)}%`;
      spark.append(bar);
    }
  }
  return h('div', { class: 'tile', dataset: { rate: id } }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, whole ? String(Math.round(value)) : fmt(value)), series ? spark : '');
}

/** Rates per second between two scrapes. */
function rates(a, b) {
  const secs = Math.max(0.001, (b.at - a.at) / 1000);
  const key = (s) => `${s.name}|${JSON.stringify(s.labels)}`;
  const before = new Map(a.samples.map((s) => [key(s), s.value]));
  const delta = (s) => Math.max(0, s.value - (before.get(key(s)) ?? 0)) / secs;
  const out = { requests: 0, errors: 0, pushed: 0, changes: 0, byApi: {} };
  for (const s of b.samples) {
    if (s.name === 'portrait_http_requests_total') {
      const d = delta(s);
      const code = s.labels.code || '';
      const bad = code !== '0' && !/^http_[123]/.test(code);
      const row = (out.byApi[s.labels.api] ||= { total: 0, errors: 0 });
      row.total += d;
      out.requests += d;
      if (bad) {
        row.errors += d;
        out.errors += d;
      }
    } else if (s.name === 'portrait_push_events_sent_total') out.pushed += delta(s);
    else if (s.name === 'portrait_push_changes_total') out.changes += delta(s);
  }
  return out;
}

route();
