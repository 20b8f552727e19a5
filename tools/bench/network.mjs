// Network benchmarks: a Redis server under `redis-benchmark`, and a client
// that opens a new TCP connection per request. Both through the `sandlock`
// CLI, as users run them, against the same programs bare.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { median } from './stats.mjs';

const CLI = fileURLToPath(new URL('../../apps/cli/bin/sandlock.cjs', import.meta.url));
const REDIS_PORT = 6379;

function sandlock(flags, command) {
  return [process.execPath, [CLI, 'run', '--system', ...flags, '--', ...command]];
}

async function waitForPort(port) {
  const end = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = createServer().listen(port, '127.0.0.1');
      socket.on('listening', () => socket.close(() => resolve(false)));
      socket.on('error', () => resolve(true));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Requests per second of `redis-benchmark -q -n 100000 -t get,set` against a server started by `start`. */
async function redisRound([file, args]) {
  const server = spawn(file, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitForPort(REDIS_PORT);
    const output = execFileSync(
      'redis-benchmark',
      ['-q', '-p', String(REDIS_PORT), '-n', '100000', '-t', 'get,set'],
      { encoding: 'utf8' },
    );
    const rates = {};
    for (const match of output.matchAll(/(GET|SET): ([\d.]+) requests per second/g)) {
      rates[match[1]] = Number(match[2]);
    }
    if (!rates.GET || !rates.SET) throw new Error(`redis-benchmark said: ${output}`);
    return rates;
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.on('exit', resolve));
  }
}

/** Redis bare vs sandboxed (`--net-allow-bind 6379`), rounds interleaved. */
export async function benchRedis(rounds = 5) {
  if (!existsSync('/usr/bin/redis-server') || !existsSync('/usr/bin/redis-benchmark')) {
    throw new Error('redis bench: apt-get install redis-server redis-tools');
  }
  const server = [
    '/usr/bin/redis-server',
    '--port',
    String(REDIS_PORT),
    '--save',
    '',
    '--appendonly',
    'no',
  ];
  const cases = {
    'redis-server bare': [server[0], server.slice(1)],
    'redis-server, --net-allow-bind 6379': sandlock(
      ['--net-allow-bind', String(REDIS_PORT)],
      server,
    ),
  };
  const samples = Object.fromEntries(
    Object.keys(cases).map((name) => [name, { GET: [], SET: [] }]),
  );
  for (let round = 0; round < rounds; round++) {
    for (const [name, command] of Object.entries(cases)) {
      const rates = await redisRound(command);
      samples[name].GET.push(rates.GET);
      samples[name].SET.push(rates.SET);
    }
  }
  const result = {};
  for (const [name, rates] of Object.entries(samples)) {
    for (const test of ['GET', 'SET']) {
      const values = rates[test];
      result[`${name}: ${test}`] = {
        median: median(values),
        p90: Math.max(...values),
        min: Math.min(...values),
        runs: values.length,
      };
    }
  }
  const names = Object.keys(cases);
  return {
    title: `Redis, redis-benchmark -q -n 100000 -t get,set, ${rounds} rounds interleaved (requests per second)`,
    unit: 'req/s',
    spread: true,
    result,
    ratios: {
      'GET sandboxed / bare': result[`${names[1]}: GET`].median / result[`${names[0]}: GET`].median,
      'SET sandboxed / bare': result[`${names[1]}: SET`].median / result[`${names[0]}: SET`].median,
    },
  };
}

const CLIENT = [
  'import socket, sys, time',
  'port, count = int(sys.argv[1]), int(sys.argv[2])',
  'start = time.perf_counter()',
  'for _ in range(count):',
  '    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
  '    s.connect(("127.0.0.1", port))',
  '    s.recv(16)',
  '    s.close()',
  'print((time.perf_counter() - start) * 1e6 / count)',
].join('\n');

/** Microseconds per request of a client that connects anew for each of 10,000 requests. */
export async function benchConnect(rounds = 5, count = 10_000) {
  const server = createServer((socket) => socket.end('ok'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const client = ['python3', '-c', CLIENT, String(port), String(count)];
  const cases = {
    bare: [client[0], client.slice(1)],
    '--net-connect PORT (Landlock)': sandlock(['--net-connect', String(port)], client),
    '--net-allow 127.0.0.1:PORT (checked per connect)': sandlock(
      ['--net-allow', `127.0.0.1:${port}`],
      client,
    ),
  };
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const [name, [file, args]] of Object.entries(cases)) {
        const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
        let output = '';
        child.stdout.on('data', (chunk) => {
          output += chunk;
        });
        const code = await new Promise((resolve) => child.on('exit', resolve));
        if (code !== 0) throw new Error(`${name}: exit ${code}`);
        samples[name].push(Number(output.trim()));
      }
    }
  } finally {
    server.close();
  }
  const result = Object.fromEntries(
    Object.entries(samples).map(([name, values]) => [
      name,
      {
        median: median(values),
        p90: Math.max(...values),
        min: Math.min(...values),
        runs: values.length,
      },
    ]),
  );
  const base = result.bare.median;
  return {
    title: `A new TCP connection per request, ${count} requests, ${rounds} rounds interleaved (µs per request)`,
    unit: 'µs',
    spread: true,
    result,
    ratios: {
      'Landlock port rule / bare': result['--net-connect PORT (Landlock)'].median / base,
      'address rule / bare':
        result['--net-allow 127.0.0.1:PORT (checked per connect)'].median / base,
      'address rule, added per request (µs)':
        result['--net-allow 127.0.0.1:PORT (checked per connect)'].median - base,
    },
  };
}
