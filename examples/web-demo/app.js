// Portrait web demo: sign in, edit my profile card, a contact list that updates live.
// Uses the TencentCloudChat-style facade of the SDK (served from /sdk/ by serve.mjs).
import TencentCloudChat from '/sdk/index.js';

const { EVENT, TYPES } = TencentCloudChat;
const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);

// State the e2e test can read.
const state = (window.__demo = { ready: false, events: [], netStates: [], me: null, contacts: {} });

let chat = null;
let me = '';

// ---------------------------------------------------------------- rendering helpers

function avatarFor(profile) {
  if (profile.avatar) return profile.avatar;
  const letter = (profile.nick || profile.userID || '?').trim().charAt(0).toUpperCase() || '?';
  let h = 0;
  for (const ch of profile.userID) h = (h * 31 + ch.charCodeAt(0)) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" rx="32" fill="hsl(${h},55%,55%)"/><text x="32" y="42" font-family="sans-serif" font-size="28" text-anchor="middle" fill="white">${escapeXml(letter)}</text></svg>`;
  return 'data:image/svg+xml,' + encodeURIComponent(svg);
}

function escapeXml(s) {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const GENDER = { [TYPES.GENDER_MALE]: 'male', [TYPES.GENDER_FEMALE]: 'female', [TYPES.GENDER_UNKNOWN]: 'unknown' };

function renderMe(p) {
  state.me = p;
  $('#me-avatar').src = avatarFor(p);
  $('#me-nick').textContent = p.nick || '(no nickname)';
  $('#me-sign').textContent = p.selfSignature;
  $('#me-meta').textContent = `${p.userID} · ${GENDER[p.gender] ?? p.gender}` +
    (p.birthday ? ` · born ${p.birthday}` : '') + ` · v${p.version}`;
  const f = $('#me-form');
  if (!f.contains(document.activeElement)) {
    f.nick.value = p.nick;
    f.avatar.value = p.avatar;
    f.selfSignature.value = p.selfSignature;
    f.gender.value = p.gender;
    f.birthday.value = p.birthday ? String(p.birthday) : '';
  }
}

function contactItem(userID) {
  let li = document.querySelector(`#contact-list li[data-user="${CSS.escape(userID)}"]`);
  if (!li) {
    li = document.createElement('li');
    li.className = 'contact';
    li.dataset.user = userID;
    li.innerHTML = '<img class="avatar" alt=""><div><div class="nick"></div><div class="sign"></div></div><span class="meta"></span>';
    $('#contact-list').append(li);
  }
  return li;
}

function renderContact(p, flash) {
  state.contacts[p.userID] = p;
  const li = contactItem(p.userID);
  li.querySelector('img').src = avatarFor(p);
  li.querySelector('.nick').textContent = p.nick || p.userID;
  li.querySelector('.sign').textContent = p.selfSignature || p.userID;
  li.querySelector('.meta').textContent = `v${p.version}`;
  if (flash) {
    li.classList.remove('flash');
    void li.offsetWidth;
    li.classList.add('flash');
  }
}

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $('#log').prepend(li);
  while ($('#log').children.length > 30) $('#log').lastChild.remove();
}

function setNet(s) {
  state.netStates.push(s);
  const el = $('#net-state');
  el.textContent = s;
  el.className = `pill ${s}`;
}

// ---------------------------------------------------------------- contacts (kept per user)

const contactsKey = () => `portrait-demo:contacts:${me}`;
function savedContacts() {
  try {
    return JSON.parse(localStorage.getItem(contactsKey()) || '[]');
  } catch {
    return [];
  }
}
function saveContacts(ids) {
  localStorage.setItem(contactsKey(), JSON.stringify([...new Set(ids)]));
}

async function addContacts(ids) {
  ids = ids.map((s) => s.trim()).filter((s) => s && s !== me);
  if (!ids.length) return;
  const res = await chat.getUserProfile({ userIDList: ids });
  const found = res.data.map((p) => p.userID);
  for (const p of res.data) renderContact(p, false);
  saveContacts([...savedContacts(), ...found]);
  const missing = ids.filter((id) => !found.includes(id));
  if (missing.length) log(`not found: ${missing.join(', ')}`);
}

// ---------------------------------------------------------------- session

async function signIn({ server, sdkappid, user, usersig, contacts }) {
  $('#signin-error').textContent = '';
  chat = TencentCloudChat.create({ SDKAppID: Number(sdkappid), server });
  chat.on(EVENT.NET_STATE_CHANGE, (e) => setNet(e.data.state));
  chat.on(EVENT.PROFILE_UPDATED, (e) => {
    for (const p of e.data) {
      state.events.push({ userID: p.userID, nick: p.nick, version: p.version });
      $('#event-count').textContent = String(state.events.length);
      log(`${p.userID} changed (v${p.version}): ${p.nick}`);
      if (p.userID === me) renderMe(p);
      else if (document.querySelector(`#contact-list li[data-user="${CSS.escape(p.userID)}"]`)) renderContact(p, true);
    }
  });
  chat.on(EVENT.KICKED_OUT, (e) => {
    log(`kicked out (${e.data.type})`);
    alert('Signed out: ' + e.data.type);
    location.reload();
  });
  chat.on(EVENT.SDK_READY, async () => {
    log('SDK ready (live)');
    renderMe((await chat.getMyProfile()).data);
    const ids = [...savedContacts(), ...(contacts ? contacts.split(',') : [])];
    await addContacts(ids);
    state.ready = true;
    document.body.dataset.ready = 'true';
  });
  me = user;
  try {
    await chat.login({ userID: user, userSig: usersig });
  } catch (e) {
    $('#signin-error').textContent = `Sign-in failed: ${e.code} ${e.message}`;
    chat = null;
    return;
  }
  sessionStorage.setItem('portrait-demo:login', JSON.stringify({ server, sdkappid, user, usersig }));
  $('#who').textContent = user;
  $('#signin').hidden = true;
  $('#app').hidden = false;
}

$('#signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ev.target;
  signIn({
    server: f.server.value.trim(), sdkappid: f.sdkappid.value.trim(), user: f.user.value.trim(),
    usersig: f.usersig.value.trim(), contacts: f.contacts.value,
  });
});

$('#me-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const cur = state.me ?? {};
  const update = {};
  if (f.nick.value !== cur.nick) update.nick = f.nick.value;
  if (f.avatar.value !== cur.avatar) update.avatar = f.avatar.value;
  if (f.selfSignature.value !== cur.selfSignature) update.selfSignature = f.selfSignature.value;
  if (f.gender.value !== cur.gender) update.gender = f.gender.value;
  const b = f.birthday.value.trim();
  if (b !== (cur.birthday ? String(cur.birthday) : '')) update.birthday = b === '' ? 0 : Number(b);
  const status = $('#me-status');
  try {
    const res = await chat.updateMyProfile(update);
    status.textContent = `saved (v${res.data.version})`;
    status.className = 'status-text ok';
    document.activeElement?.blur?.();
    renderMe(res.data);
  } catch (e) {
    status.textContent = `error ${e.code}: ${e.message}`;
    status.className = 'status-text error';
  }
});

$('#add-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = ev.target.ids;
  try {
    await addContacts(input.value.split(','));
    input.value = '';
  } catch (e) {
    log(`error ${e.code}: ${e.message}`);
  }
});

$('#signout').addEventListener('click', async () => {
  await chat?.logout();
  sessionStorage.removeItem('portrait-demo:login');
  location.href = location.pathname;
});

// Prefill from the URL (?server=&sdkappid=&user=&usersig=&contacts=&autologin=1), or resume the
// session of this tab after a reload.
const f = $('#signin-form');
for (const k of ['server', 'sdkappid', 'user', 'usersig', 'contacts']) if (params.get(k)) f[k].value = params.get(k);
const resume = sessionStorage.getItem('portrait-demo:login');
if (params.get('autologin') === '1') {
  f.requestSubmit();
} else if (resume) {
  signIn({ ...JSON.parse(resume), contacts: '' });
}
