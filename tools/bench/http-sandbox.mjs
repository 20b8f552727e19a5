// Requests per second of a program in a sandbox, through the sandbox's HTTP
// proxy (connects redirected by the reaper, --http-allow with a path, so
// HTTPS is intercepted) against the same sandbox without HTTP rules (its
// connects checked by Landlock alone): kept-alive and a new connection per
// request, HTTP, HTTPS and HTTP/2 (an h2-only server: through the proxy, h2
// both ways). The program times its own requests (not its start).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { median } from './stats.mjs';

const run = promisify(execFile);
const PEER = fileURLToPath(new URL('./http-peer.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../apps/cli/bin/sandlock.cjs', import.meta.url));

const CLIENT = `
const http = require('node:http'), https = require('node:https'), http2 = require('node:http2'), fs = require('node:fs');
const [url, count, keepAlive, caFile, h2] = process.argv.slice(2);
const client = url.startsWith('https:') ? https : http;
const ca = caFile ? fs.readFileSync(caFile, 'utf8') : undefined;
const agent = new client.Agent({ keepAlive: keepAlive === '1', maxSockets: 1, ...(ca ? { ca } : {}) });
const get1 = () => new Promise((resolve, reject) => {
  client.get(url, { agent }, (res) => {
    res.resume();
    res.on('end', () => res.statusCode === 200 ? resolve() : reject(new Error('status ' + res.statusCode)));
  }).on('error', reject);
});
let session = null;
const get2 = () => new Promise((resolve, reject) => {
  if (session === null) { session = http2.connect(new URL(url).origin, ca ? { ca } : {}); session.on('error', reject); }
  const stream = session.request({ ':path': new URL(url).pathname });
  let status = 0;
  stream.on('response', (headers) => (status = headers[':status']));
  stream.resume();
  stream.on('error', reject);
  stream.on('end', () => {
    if (keepAlive !== '1') { session.close(); session = null; }
    status === 200 ? resolve() : reject(new Error('status ' + status));
  });
});
const get = h2 === 'h2' ? get2 : get1;
(async () => {
  await get();
  const start = process.hrtime.bigint();
  for (let i = 0; i < Number(count); i++) await get();
  console.log(Number(count) / (Number(process.hrtime.bigint() - start) / 1e9));
  agent.destroy();
  session?.close();
})().catch((error) => { console.error(error.message); process.exit(1); });
`;

function upstreamPeer() {
  const child = spawn(process.execPath, [PEER, 'upstream', 'localhost'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) =>
      resolve({ child, ...JSON.parse(line) }),
    );
    child.once('exit', (code) => reject(new Error(`http-peer upstream exited with ${code}`)));
  });
}

export async function benchHttpSandbox() {
  const upstream = await upstreamPeer();
  const dir = mkdtempSync(join(tmpdir(), 'sandlock-bench-http-'));
  const caFile = join(dir, 'upstream-ca.pem');
  const client = join(dir, 'client.cjs');
  writeFileSync(caFile, upstream.ca);
  writeFileSync(client, CLIENT);
  const count = 200;
  const rounds = 5;
  const read = ['/usr', '/lib', '/lib64', '/bin', '/etc', dir, process.execPath].flatMap((path) => [
    '-r',
    path,
  ]);
  const net = ['--net-allow', `127.0.0.1:${upstream.plain},${upstream.secure},${upstream.h2}`];
  const sandboxed = async (proxied, protocol, keepAlive) => {
    const secure = protocol !== 'HTTP';
    const url =
      protocol === 'HTTP/2'
        ? `https://localhost:${upstream.h2}/x/y`
        : secure
          ? `https://localhost:${upstream.secure}/x/y`
          : `http://localhost:${upstream.plain}/x/y`;
    const { stdout } = await run(
      process.execPath,
      [
        CLI,
        'run',
        ...read,
        ...net,
        ...(proxied ? ['--http-allow', 'GET localhost/x/**'] : []),
        '--',
        process.execPath,
        client,
        url,
        String(count),
        keepAlive ? '1' : '0',
        // Through the proxy the sandbox trusts its CA (NODE_EXTRA_CA_CERTS);
        // direct, the upstream's.
        secure && !proxied ? caFile : '',
        protocol === 'HTTP/2' ? 'h2' : '',
      ],
      // The supervisor's proxy verifies the upstream against this CA.
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile }, timeout: 300_000 },
    );
    return Number(stdout.trim());
  };
  const cases = {};
  for (const protocol of ['HTTP', 'HTTPS', 'HTTP/2']) {
    for (const keepAlive of [true, false]) {
      const kind = `${protocol} ${keepAlive ? 'keep-alive' : 'new connection'}`;
      const secure = protocol !== 'HTTP';
      cases[`${kind}, sandbox without HTTP rules`] = () => sandboxed(false, protocol, keepAlive);
      cases[`${kind}, sandbox through its proxy${secure ? ' (intercepted)' : ''}`] = () =>
        sandboxed(true, protocol, keepAlive);
    }
  }
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [name, measure] of Object.entries(cases)) samples[name].push(await measure());
    }
  } finally {
    upstream.child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
  const result = Object.fromEntries(
    Object.entries(samples).map(([name, values]) => [
      name,
      {
        median: median(values),
        min: Math.min(...values),
        p90: Math.max(...values),
        runs: values.length,
      },
    ]),
  );
  const names = Object.keys(result);
  const ratios = {};
  for (let index = 0; index < names.length; index += 2) {
    const kind = names[index].split(',')[0];
    ratios[`${kind}: through the proxy / without`] =
      result[names[index + 1]].median / result[names[index]].median;
  }
  return {
    title: `HTTP from a sandbox through its proxy, ${count} sequential GETs per sandbox, ${rounds} rounds interleaved (requests per second)`,
    unit: 'req/s',
    spread: true,
    result,
    ratios,
  };
}
