// DOM helpers: every text goes in through textContent (never innerHTML), so nothing an API
// returns can run as markup.

/** `h('a', {href: '#/x', class: 'c', onclick: fn, dataset: {k: 'v'}}, 'text', child, …)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = true;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table: `cols` are header texts, `rows` arrays of cells (text or nodes). */
export function table(cols, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => (r instanceof Node ? r : h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

/** Milliseconds since the epoch → local date and time. */
export const when = (ms) => (ms ? new Date(ms).toLocaleString() : '—');

/** A JSON value as short text (strings without quotes). */
export const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

/** Lines of a textarea → trimmed, non-empty. */
export const lines = (text) => text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
