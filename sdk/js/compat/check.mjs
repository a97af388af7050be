// Compiles every app in apps/ with `strict` twice: against the vendor package it imports (as
// written), then with only the import specifiers swapped to '@portrait/web-sdk' (Portrait's
// dist/*.d.ts; run `npm run build` in sdk/js first). Exits 1 with the diagnostics if either fails.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const here = path.dirname(fileURLToPath(import.meta.url));
const PORTRAIT = process.env.PORTRAIT_DTS || path.resolve(here, '../dist/index');
/** The vendor specifiers apps import (a package or a path inside it) → Portrait's. */
const VENDOR_SPECIFIER = /(['"])(@tencentcloud\/chat|@yxim\/nim-web-sdk)(\/[^'"]*)?\1/g;

const base = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2020,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2020.d.ts', 'lib.dom.d.ts'],
  types: [],
  // The vendors' own .d.ts files have errors of their own (missing modules they do not ship);
  // the apps' use of them is checked in full either way.
  skipLibCheck: true,
};

function compile(files, options, label) {
  const program = ts.createProgram(files, { ...base, ...options });
  const diags = ts.getPreEmitDiagnostics(program).filter((d) => !d.file || !d.file.isDeclarationFile);
  const host = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => here, getNewLine: () => '\n' };
  if (diags.length) {
    console.error(`FAIL ${label}: ${diags.length} error(s)\n${ts.formatDiagnostics(diags, host)}`);
    return false;
  }
  // The vendor imports must resolve to the vendor's declarations (not to `any`).
  for (const f of files) {
    const sf = program.getSourceFile(f);
    for (const imp of sf.statements.filter(ts.isImportDeclaration)) {
      const spec = imp.moduleSpecifier.text;
      const r = ts.resolveModuleName(spec, f, { ...base, ...options }, ts.sys);
      if (!r.resolvedModule) {
        console.error(`FAIL ${label}: ${path.basename(f)} imports ${spec}, which does not resolve`);
        return false;
      }
    }
  }
  console.log(`ok   ${label}: ${files.map((f) => path.basename(f)).join(', ')}`);
  return true;
}

const appsDir = path.join(here, 'apps');
const apps = readdirSync(appsDir).filter((f) => f.endsWith('.ts')).sort();
const vendorFiles = apps.map((f) => path.join(appsDir, f));

const swappedDir = path.join(here, 'build', 'portrait');
rmSync(swappedDir, { recursive: true, force: true });
mkdirSync(swappedDir, { recursive: true });
const swappedFiles = [];
for (const f of apps) {
  const src = readFileSync(path.join(appsDir, f), 'utf8');
  const out = src.replace(VENDOR_SPECIFIER, "$1@portrait/web-sdk$1");
  // Only import lines may differ.
  const a = src.split('\n');
  const b = out.split('\n');
  a.forEach((line, i) => {
    if (line !== b[i] && !/^import\b/.test(line)) throw new Error(`${f}:${i + 1}: the swap changed a line that is not an import`);
  });
  if (out === src) throw new Error(`${f}: imports no vendor package`);
  const dest = path.join(swappedDir, f);
  writeFileSync(dest, out);
  swappedFiles.push(dest);
}

const ok1 = compile(vendorFiles, {}, 'apps against the vendor packages');
const ok2 = compile(swappedFiles, { paths: { '@portrait/web-sdk': [PORTRAIT] } }, 'the same apps against @portrait/web-sdk');
process.exit(ok1 && ok2 ? 0 : 1);
