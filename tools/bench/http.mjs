// The HTTP proxy of @sandlock/http: requests per second through it against
// the same requests direct, kept-alive and with a new connection each, plain
// HTTP and HTTPS intercepted (a path rule). Server, proxy and client are
// three processes, as a sandbox's server, supervisor and program would be.
import { spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median } from './stats.mjs';

const PEER = fileURLToPath(new URL('./http-peer.mjs', import.meta.url));

function peer(args) {
  const child = spawn(process.execPath, [PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) =>
      resolve({ child, ...JSON.parse(line) }),
    );
    child.once('exit', (code) => reject(new Error(`http-peer ${args[0]} exited with ${code}`)));
  });
}

function get(module, options) {
  return new Promise((resolve, reject) => {
    const req = module.get(options, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
  });
}

export async function benchHttp() {
  const upstream = await peer(['upstream']);
  const proxy = await peer(['proxy', String(upstream.plain), String(upstream.secure), upstream.ca]);
  const count = 200;
  const rounds = 10;
  const agents = [];
  const agent = (module, keepAlive, ca) => {
    const made = new module.Agent({ keepAlive, maxSockets: 1, ...(ca ? { ca } : {}) });
    agents.push(made);
    return made;
  };
  const target = (module, host, port, keepAlive, ca) => {
    const options = {
      host,
      port,
      path: '/x/y',
      headers: { host: `bench.test:${port}` },
      servername: 'bench.test',
      agent: agent(module, keepAlive, ca),
    };
    return async () => {
      for (let i = 0; i < count; i++) await get(module, options);
    };
  };
  const cases = {
    'HTTP keep-alive, direct': target(http, '127.0.0.1', upstream.plain, true),
    'HTTP keep-alive, proxy': target(http, '127.0.0.3', upstream.plain, true),
    'HTTP new connection, direct': target(http, '127.0.0.1', upstream.plain, false),
    'HTTP new connection, proxy': target(http, '127.0.0.3', upstream.plain, false),
    'HTTPS keep-alive, direct': target(https, '127.0.0.1', upstream.secure, true, upstream.ca),
    'HTTPS keep-alive, intercepted': target(https, '127.0.0.3', upstream.secure, true, proxy.ca),
    'HTTPS new connection, direct': target(https, '127.0.0.1', upstream.secure, false, upstream.ca),
    'HTTPS new connection, intercepted': target(
      https,
      '127.0.0.3',
      upstream.secure,
      false,
      proxy.ca,
    ),
  };
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  try {
    for (const run of Object.values(cases)) await run();
    for (let round = 0; round < rounds; round++) {
      for (const [name, run] of Object.entries(cases)) {
        const start = process.hrtime.bigint();
        await run();
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        samples[name].push(count / seconds);
      }
    }
  } finally {
    for (const made of agents) made.destroy();
    upstream.child.kill();
    proxy.child.kill();
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
  const ratio = (a, b) => result[a].median / result[b].median;
  return {
    title: `HTTP through the proxy of @sandlock/http, ${count} sequential GETs per round, ${rounds} rounds interleaved (requests per second)`,
    unit: 'req/s',
    spread: true,
    result,
    ratios: {
      'HTTP keep-alive, proxy / direct': ratio('HTTP keep-alive, proxy', 'HTTP keep-alive, direct'),
      'HTTP new connection, proxy / direct': ratio(
        'HTTP new connection, proxy',
        'HTTP new connection, direct',
      ),
      'HTTPS keep-alive, intercepted / direct': ratio(
        'HTTPS keep-alive, intercepted',
        'HTTPS keep-alive, direct',
      ),
      'HTTPS new connection, intercepted / direct': ratio(
        'HTTPS new connection, intercepted',
        'HTTPS new connection, direct',
      ),
    },
  };
}
