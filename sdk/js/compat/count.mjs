// Counts what Portrait's declarations match of the vendors' typings: calls, options, fields,
// events and constants, by name, read with the TypeScript checker from both packages' .d.ts.
//
//   node count.mjs                         # Portrait = ../dist (run `npm run build` in sdk/js)
//   node count.mjs --portrait DIR/index    # another build of Portrait (e.g. an older commit's)
//   node count.mjs --json
//
// "all" is the vendor's whole surface of that kind (its SDKs do far more than profiles);
// "profile scope" is the part a profile-hosting app uses, listed in SCOPE below.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const at = args.indexOf('--portrait');
const PORTRAIT = at >= 0 ? path.resolve(args[at + 1]) : path.resolve(here, '../dist/index');

const SCOPE = {
  chat: {
    calls: ['create', 'login', 'logout', 'getLoginUser', 'getServerTime', 'isReady', 'destroy', 'on', 'off', 'setLogLevel',
      'getMyProfile', 'getUserProfile', 'updateMyProfile'],
    options: (n) => /^(create|login|getUserProfile|updateMyProfile)\./.test(n),
    fields: () => true,
    events: ['SDK_READY', 'SDK_NOT_READY', 'PROFILE_UPDATED', 'KICKED_OUT', 'ERROR', 'NET_STATE_CHANGE'],
    constants: (n) => /^(GENDER_|ALLOW_TYPE_|FORBID_TYPE_|KICKED_OUT_|NET_STATE_)/.test(n),
  },
  nim: {
    calls: ['getInstance', 'updateMyInfo', 'getUser', 'getUsers', 'getUsersFromDB', 'mergeUsers', 'setOptions', 'connect',
      'disconnect', 'destroy', 'logout'],
    options: (n) => /^getInstance\.(appKey|account|token|authType|loginExt|debug|logLevel|db|syncFriendUsers)$/.test(n)
      || /^(updateMyInfo|getUser|getUsers|getUsersFromDB|disconnect|destroy)\./.test(n),
    fields: () => true,
    events: ['onconnect', 'onwillreconnect', 'ondisconnect', 'onerror', 'onsyncdone', 'onmyinfo', 'onupdatemyinfo', 'onusers',
      'onupdateuser'],
    constants: () => true,
  },
};

const PROBES = {
  chat: (spec, extra) => `
import TencentCloudChat, { Profile } from '${spec}';
${extra}
export declare const Static: typeof TencentCloudChat;
export type Instance = ReturnType<typeof TencentCloudChat.create>;
export type CreateOptions = Parameters<typeof TencentCloudChat.create>[0];
export type Fields = Profile;
export declare const Events: typeof TencentCloudChat.EVENT;
export declare const Constants: typeof TencentCloudChat.TYPES;
`,
  nim: (spec, card, cardName = 'NIMUserNameCard') => `
import { NIM } from '${spec}';
import type { ${cardName} as NIMUserNameCard } from '${card}';
export declare const Static: typeof NIM;
export type Instance = ReturnType<typeof NIM.getInstance>;
export type CreateOptions = Parameters<typeof NIM.getInstance>[0];
export type Fields = NIMUserNameCard;
export type ConnectInfo = Parameters<NonNullable<CreateOptions['onconnect']>>[0];
export type DisconnectInfo = Parameters<NonNullable<CreateOptions['ondisconnect']>>[0];
`,
};

function surface(kind, side, cardName) {
  const spec = side === 'vendor' ? (kind === 'chat' ? '@tencentcloud/chat' : '@yxim/nim-web-sdk') : '@portrait/web-sdk';
  const card = side === 'vendor' ? '@yxim/nim-web-sdk/dist/types/nim/UserInterface' : '@portrait/web-sdk';
  const file = path.join(here, `__probe_${kind}_${side}.ts`);
  const text = PROBES[kind](spec, kind === 'nim' ? card : '', cardName);
  const options = {
    strict: true, noEmit: true, target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler, skipLibCheck: true, types: [],
    lib: ['lib.es2020.d.ts', 'lib.dom.d.ts'], paths: { '@portrait/web-sdk': [PORTRAIT] },
  };
  const host = ts.createCompilerHost(options);
  const orig = host.getSourceFile;
  host.getSourceFile = (f, lang) => (f === file ? ts.createSourceFile(f, text, lang) : orig.call(host, f, lang));
  host.fileExists = ((fe) => (f) => f === file || fe(f))(host.fileExists);
  const program = ts.createProgram([file], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(file);
  const exports = new Map(checker.getExportsOfModule(checker.getSymbolAtLocation(sf)).map((s) => [s.name, s]));
  const typeOf = (name) => {
    const s = exports.get(name);
    if (!s) return null;
    const decl = s.declarations[0];
    return ts.isTypeAliasDeclaration(decl) ? checker.getTypeAtLocation(decl.name) : checker.getTypeOfSymbolAtLocation(s, decl);
  };
  const props = (t) => {
    if (!t) return [];
    const parts = t.isUnion() ? t.types : [t];
    return [...new Set(parts.flatMap((p) => checker.getPropertiesOfType(checker.getApparentType(p)).map((x) => x.name)))];
  };
  const propType = (t, name) => {
    const p = t && checker.getPropertyOfType(t, name);
    return p ? checker.getTypeOfSymbolAtLocation(p, sf) : null;
  };
  const isCall = (t) => !!t && t.getCallSignatures().length > 0;
  const objectParamProps = (fnType) => {
    const sig = fnType?.getCallSignatures()[0];
    const p = sig?.parameters[0];
    if (!p) return [];
    const t = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(p, sf));
    if (!(t.flags & ts.TypeFlags.Object) && !t.isUnion() && !t.isIntersection()) return [];
    if (checker.isArrayType?.(t) || t.getCallSignatures().length) return [];
    return props(t).filter((n) => !/^\d+$/.test(n));
  };

  const instance = typeOf('Instance');
  const statics = typeOf('Static');
  const out = { calls: [], options: [], fields: [], events: [], constants: [] };
  const staticCalls = props(statics).filter((n) => n !== 'prototype' && isCall(propType(statics, n)));
  const instanceCalls = props(instance).filter((n) => isCall(propType(instance, n)));
  out.calls = [...new Set([...staticCalls, ...instanceCalls])];
  const createName = kind === 'chat' ? 'create' : 'getInstance';
  const createOptions = props(typeOf('CreateOptions'));
  const isEvent = (n) => kind === 'nim' && /^on[a-z]/.test(n);
  out.options.push(...createOptions.filter((n) => !isEvent(n)).map((n) => `${createName}.${n}`));
  for (const m of instanceCalls) out.options.push(...objectParamProps(propType(instance, m)).map((n) => `${m}.${n}`));
  out.fields = props(typeOf('Fields')).map((n) => `card.${n}`);
  if (kind === 'chat') {
    out.fields = props(typeOf('Fields')).map((n) => `Profile.${n}`);
    out.events = props(typeOf('Events'));
    out.constants = props(typeOf('Constants'));
  } else {
    out.fields.push(...props(typeOf('ConnectInfo')).map((n) => `onconnect.${n}`));
    out.fields.push(...props(typeOf('DisconnectInfo')).map((n) => `ondisconnect.${n}`));
    out.events = createOptions.filter(isEvent);
  }
  return out;
}

const inScope = (kind, cat, name) => {
  const s = SCOPE[kind][cat];
  const bare = name.replace(/^(Profile|card)\./, '');
  return Array.isArray(s) ? s.includes(bare) : s(name);
};

const report = {};
for (const kind of ['chat', 'nim']) {
  const v = surface(kind, 'vendor');
  let p = surface(kind, 'portrait');
  // An older Portrait without the vendor's type name: its own card type, so fields count fairly.
  if (kind === 'nim' && !p.fields.some((n) => n.startsWith('card.'))) {
    const own = surface(kind, 'portrait', 'NimUser');
    p = { ...p, fields: [...own.fields.filter((n) => n.startsWith('card.')), ...p.fields] };
  }
  report[kind] = {};
  for (const cat of Object.keys(v)) {
    const have = new Set(p[cat]);
    const all = v[cat];
    const scoped = all.filter((n) => inScope(kind, cat, n));
    report[kind][cat] = {
      all: [all.filter((n) => have.has(n)).length, all.length],
      scope: [scoped.filter((n) => have.has(n)).length, scoped.length],
      missingInScope: scoped.filter((n) => !have.has(n)),
    };
  }
}

if (args.includes('--json')) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const names = { chat: '@tencentcloud/chat', nim: '@yxim/nim-web-sdk' };
  console.log(`Portrait declarations: ${path.relative(process.cwd(), PORTRAIT)}.d.ts`);
  for (const kind of Object.keys(report)) {
    console.log(`\n${names[kind]}          matched (profile scope)   matched (all)`);
    for (const [cat, r] of Object.entries(report[kind])) {
      const sc = r.scope[1] ? `${r.scope[0]}/${r.scope[1]}` : 'n/a';
      console.log(`  ${cat.padEnd(10)} ${sc.padStart(24)} ${`${r.all[0]}/${r.all[1]}`.padStart(16)}`
        + (r.missingInScope.length ? `   missing: ${r.missingInScope.join(', ')}` : ''));
    }
  }
}
