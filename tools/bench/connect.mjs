// What the destinations module costs: a sandbox's start now that every
// sandbox is supervised (connect, sendto and sendmsg are notified), and a
// TCP connect made through it. BASELINE_CLI=<path to another build's
// bin/sandlock.cjs> adds that build's numbers (e.g. one where a sandbox
// without network rules had no supervisor).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { interleave, median, percentile, summarize } from './stats.mjs';

const CLI = fileURLToPath(new URL('../../apps/cli/bin/sandlock.cjs', import.meta.url));
const BASELINE = process.env.BASELINE_CLI;
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));
const READ = SYSTEM.flatMap((path) => ['-r', path]);

function run(command, args) {
  return () =>
    new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`)),
      );
    });
}

/**
 * `sandlock run -- /bin/true` without a supervisor (read grants only: it may
 * make no Unix socket) and with one for its connects alone (a TCP rule),
 * and the baseline build's, if given.
 */
export async function benchStart(runs = 40) {
  const plain = 'sandlock run -r … -- /bin/true (no supervisor)';
  const supervised = 'sandlock run -r … --net-allow tcp://127.0.0.1:9 -- /bin/true';
  const cases = {
    [plain]: run(process.execPath, [CLI, 'run', ...READ, '--', '/bin/true']),
    [supervised]: run(process.execPath, [
      CLI,
      'run',
      ...READ,
      '--net-allow',
      'tcp://127.0.0.1:9',
      '--',
      '/bin/true',
    ]),
  };
  if (BASELINE) {
    cases['baseline: sandlock run -r … -- /bin/true'] = run(process.execPath, [
      BASELINE,
      'run',
      ...READ,
      '--',
      '/bin/true',
    ]);
  }
  const result = summarize(await interleave(cases, runs, 5));
  const ratios = {
    'a supervisor for the connects alone (ms)': result[supervised].median - result[plain].median,
  };
  return { title: 'Start of a sandbox with and without a supervisor', result, ratios };
}

const CONNECTS = `
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
samples = []
for i in range(count + 200):
    s = socket.socket()
    start = time.perf_counter_ns()
    s.connect(('127.0.0.1', port))
    took = time.perf_counter_ns() - start
    s.close()
    if i >= 200:
        samples.append(took / 1000)
print(' '.join('%.1f' % value for value in samples))
`;

function output(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (chunk) => {
      text += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`${command} exited ${code}`)),
    );
  });
}

/** µs per blocking TCP connect to a loopback listener, from Python, by where it is decided. */
export async function benchConnectCost(count = 2000, rounds = 3) {
  const server = createServer((socket) => socket.destroy());
  await new Promise((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  const port = String(server.address().port);
  const python = ['/usr/bin/python3', '-c', CONNECTS, port, String(count)];
  const cases = {
    bare: ['/usr/bin/python3', python.slice(1)],
    '--net-connect PORT (module, no address rule)': [
      process.execPath,
      [CLI, 'run', ...READ, '--net-connect', port, '--', ...python],
    ],
    '--net-allow tcp://127.0.0.1:PORT': [
      process.execPath,
      [CLI, 'run', ...READ, '--net-allow', `tcp://127.0.0.1:${port}`, '--', ...python],
    ],
  };
  if (BASELINE) {
    cases['baseline: --net-connect PORT'] = [
      process.execPath,
      [BASELINE, 'run', ...READ, '--net-connect', port, '--', ...python],
    ];
  }
  const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, [command, args]] of Object.entries(cases)) {
      const text = await output(command, args);
      samples[name].push(...text.trim().split(' ').map(Number));
    }
  }
  server.close();
  const result = Object.fromEntries(
    Object.entries(samples).map(([name, values]) => [
      name,
      { median: median(values), p90: percentile(values, 0.9), runs: values.length },
    ]),
  );
  const ratios = {
    'address rule − bare (µs)':
      result['--net-allow tcp://127.0.0.1:PORT'].median - result.bare.median,
  };
  return { title: 'A blocking TCP connect over loopback', result, ratios, unit: 'µs' };
}
