// The vendor documents' code examples (test/seeds/*.txt, copies of shared/seeds), extracted from
// the text as written, and what it takes to run them: a console that records, and the bits of the
// web page the legacy webim demo code reads (jQuery-style `$`, `alert`, `document`).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'seeds');
export const seedText = (name) => readFileSync(path.join(dir, name), 'utf8');

export const CHAT_DOC = '000_tencentcloudchat_user_profile.txt';
export const CHAT_EXAMPLES = '000_tencentcloudchat_user_profile.examples.js';
export const NIM_DOC = '001_nim_user_profile_hosting.txt';
export const WEBIM_DOC = '003_webim_profile.txt';

/** TencentCloudChat examples: `[{name, code}]` from the `// @example NAME` blocks. */
export function chatExamples() {
  const parts = seedText(CHAT_EXAMPLES).split(/^\/\/ @example (.+)$/m);
  const out = [];
  for (let i = 1; i < parts.length; i += 2) out.push({ name: parts[i].trim(), code: parts[i + 1].trim() });
  return out;
}

function compiles(code) {
  try {
    new vm.Script(code);
    return true;
  } catch {
    return false;
  }
}

/**
 * NIM examples: each block of the document starts with a line `javascript…` (the code block's
 * language label glued to its first line) and ends at the first blank or prose line at which
 * the code so far is a complete program.
 */
export function nimExamples() {
  const lines = seedText(NIM_DOC).split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('javascript')) continue;
    const code = [lines[i].slice('javascript'.length)];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j];
      const end = l.trim() === '' || /^[^\x00-\x7f]/.test(l);
      if (end && compiles(code.join('\n'))) break;
      code.push(l);
    }
    // The section title is the last prose line above "示例代码:".
    const title = lines.slice(0, i).reverse().find((l) => l.trim() && !/^示例代码|^调用|^用户资料相关/.test(l.trim()));
    out.push({ name: title.trim(), code: code.join('\n').trim() });
    i = j;
  }
  return out;
}

/** webim document: `{'1.1': {title, code}, …}`, the first ``` block of every numbered section. */
export function webimSections() {
  const text = seedText(WEBIM_DOC);
  const out = {};
  const re = /^#+ ([\d.]+) (.*)$/gm;
  const heads = [...text.matchAll(re)];
  for (let k = 0; k < heads.length; k++) {
    const body = text.slice(heads[k].index, k + 1 < heads.length ? heads[k + 1].index : text.length);
    const m = /```\n([\s\S]*?)```/.exec(body);
    if (m) out[heads[k][1]] = { title: heads[k][2].trim(), code: m[1].trim() };
  }
  return out;
}

/** A `console` that records `[method, args]` (and stays quiet). */
export function recordingConsole() {
  const calls = [];
  const rec = (method) => (...args) => calls.push([method, args]);
  return { calls, log: rec('log'), info: rec('info'), warn: rec('warn'), error: rec('error'), debug: rec('debug') };
}

/**
 * The page around the webim demo code: `$(selector)` reads `values[selector]` through `.val()` and
 * records `.modal(…)` / `.bootstrapTable(…)` calls; `alert` and `document.getElementById(id).innerHTML`
 * are recorded too.
 */
export function demoPage(values) {
  const calls = { alert: [], modal: [], bootstrapTable: [], innerHTML: {} };
  const $ = (selector) => ({
    val: () => values[selector],
    modal: (...args) => calls.modal.push([selector, ...args]),
    bootstrapTable: (...args) => calls.bootstrapTable.push([selector, ...args]),
  });
  const document = {
    getElementById: (id) => ({
      set innerHTML(v) {
        calls.innerHTML[id] = v;
      },
      get innerHTML() {
        return calls.innerHTML[id];
      },
    }),
  };
  return { calls, $, alert: (m) => calls.alert.push(m), document };
}

/** Runs `code` as a function body with `scope`'s names bound; `ret` is an expression to return. */
export function runExample(code, scope, ret = 'undefined') {
  const names = Object.keys(scope);
  // eslint-disable-next-line no-new-func
  const fn = new Function(...names, `${code}\n;return (${ret});`);
  return fn(...names.map((n) => scope[n]));
}
