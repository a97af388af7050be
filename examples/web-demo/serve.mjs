#!/usr/bin/env node
// Serves the web demo and the built SDK (sdk/js/dist, under /sdk/). No dependencies.
//   node examples/web-demo/serve.mjs [--port 8090] [--host 127.0.0.1]
// (or `npm --prefix sdk/js run demo`, which builds the SDK first). The demo talks to the Portrait
// server directly from the browser (its CORS is permissive).
import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdkDist = path.resolve(here, '../../sdk/js/dist');

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Resolves `rel` inside `root`, or null if it escapes. */
function inside(root, rel) {
  const p = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  return p === root || p.startsWith(root + path.sep) ? p : null;
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://demo');
  let file;
  if (url.pathname.startsWith('/sdk/')) file = inside(sdkDist, url.pathname.slice('/sdk/'.length));
  else file = inside(here, url.pathname === '/' ? 'index.html' : url.pathname.slice(1));
  if (!file || file.endsWith('.mjs') && path.dirname(file) === here) {
    res.writeHead(404).end('not found');
    return;
  }
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new Error('not a file');
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    res.end(body);
  } catch {
    if (url.pathname.startsWith('/sdk/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('SDK not built: run `npm --prefix sdk/js run build`');
    } else {
      res.writeHead(404).end('not found');
    }
  }
}

/** Starts the demo server; resolves to {url, close()}. */
export async function startDemoServer({ port = 8090, host = '127.0.0.1' } = {}) {
  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: actual } = server.address();
  return {
    url: `http://${host}:${actual}/`,
    close: () => new Promise((r) => server.close(r)),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(name);
    return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
  };
  const { url } = await startDemoServer({
    port: Number(arg('--port', process.env.PORT ?? 8090)),
    host: arg('--host', '127.0.0.1'),
  });
  console.log(`web-demo: ${url}`);
}
