// Attacks on the delegation socket (SANDLOCK_SUPERVISOR) from the outside
// review, scaled down: a sandbox that floods it to run the supervising
// process out of descriptors (finding 3) or memory (finding 4). Each runs in
// a child Node process that uses the built package, so that its limits and
// its heap are its own.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { collect, PYTHON } from '../../../tools/test-support/index.js';
import { DELEGATION_MAX_CONNECTIONS_PER_SANDBOX, DELEGATION_MAX_REQUEST } from '../src/nesting.js';
import { SYSTEM_READ, systemBuilder } from './helpers.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sandlock-delegation-'));
afterAll(() => process.env.DEBUG_HOST || rmSync(work, { recursive: true, force: true }));

/**
 * Runs `body` (the inside of an async function, with `Sandbox`, `SYSTEM`,
 * `PYTHON` and `lines(sandboxed)` in scope) in a child Node process whose
 * open-file limit is `nofile`; returns what it printed as JSON.
 */
async function host(body: string, nofile?: number): Promise<Record<string, unknown>> {
  const script = join(work, `host-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    script,
    `import { Sandbox } from ${JSON.stringify(dist)};
const SYSTEM = ${JSON.stringify(SYSTEM_READ)};
const PYTHON = ${JSON.stringify(PYTHON)};
/** Resolves with each line the sandboxed program prints, one call at a time. */
function lines(sandboxed) {
  let text = '';
  let ended = false;
  const waiting = [];
  sandboxed.stdout.on('data', (chunk) => {
    text += chunk;
    for (let end = text.indexOf('\\n'); end >= 0 && waiting.length > 0; end = text.indexOf('\\n')) {
      waiting.shift()(text.slice(0, end));
      text = text.slice(end + 1);
    }
  });
  sandboxed.stdout.on('end', () => { ended = true; for (const resolve of waiting.splice(0)) resolve(null); });
  return () => new Promise((resolve) => {
    const end = text.indexOf('\\n');
    if (end >= 0) { resolve(text.slice(0, end)); text = text.slice(end + 1); }
    else if (ended) resolve(null);
    else waiting.push(resolve);
  });
}
const result = await (async () => { ${body} })();
process.stdout.write(JSON.stringify(result));
process.exit(0);
`,
  );
  const command = nofile === undefined ? '' : `ulimit -n ${nofile} && `;
  // --expose-gc: a heap figure counts what is held, not garbage not yet collected.
  const child = spawn(
    '/bin/sh',
    ['-c', `${command}exec "$0" --expose-gc "$1"`, process.execPath, script],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const finished = await collect(child);
  if (process.env.DEBUG_HOST) console.log(script, finished);
  expect(finished.stderr).toBe('');
  expect(finished.code).toBe(0);
  return JSON.parse(finished.stdout);
}

// Opens up to N connections to the supervisor, makes a request on each and
// reads until the supervisor answers or closes, keeping every connection
// open; then tries 20 forks and allocates 512 MiB.
const FLOOD = `
import os, socket, sys, time
held = []
for i in range(int(sys.argv[1])):
    try:
        s = socket.socket(socket.AF_UNIX)
    except OSError:
        break  # out of descriptors
    try:
        s.connect(os.environ['SANDLOCK_SUPERVISOR'])
        s.sendall(b'{"reaperPid": 1, "programPid": 1, "policy": {}}\\n')
    except OSError:
        s.close()
        continue
    held.append(s)
for s in held:
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
print('connected', len(held), flush=True)
sys.stdin.readline()
forked = 0
for i in range(20):
    try:
        pid = os.fork()
    except BlockingIOError:
        continue
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    forked += 1
print('forked', forked, flush=True)
b = bytearray(512 << 20)
print('allocated', flush=True)
`;

// Processes that each open N connections and send 1 MiB without a newline on
// each; prints how many connections took the whole MiB.
const HOARD = `
import os, select, socket, sys
def hoard(n):
    socks = {}
    for i in range(n):
        try:
            s = socket.socket(socket.AF_UNIX)
        except OSError:
            break
        try:
            s.connect(os.environ['SANDLOCK_SUPERVISOR'])
        except OSError:
            continue
        s.setblocking(False)
        socks[s] = 1 << 20
    full = 0
    while socks:
        _, ready, _ = select.select([], list(socks), [], 30)
        if not ready:
            break
        for s in ready:
            try:
                socks[s] -= s.send(b'x' * min(socks[s], 1 << 16))
            except OSError:
                del socks[s]
                continue
            if socks[s] == 0:
                full += 1
                del socks[s]
    return full
n, processes = int(sys.argv[1]), int(sys.argv[2])
children = []
for p in range(processes):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(hoard(n)).encode())
        os._exit(0)
    os.close(w)
    children.append(r)
print(sum(int(os.read(r, 32) or 0) for r in children), flush=True)
`;

describe('the delegation socket under attack', () => {
  it('a flood of connections does not blind the limits or starve the supervisor (finding 3)', async () => {
    // 400 descriptors: the sandbox inherits the hard limit and can open
    // about as many connections as the supervising process has descriptors.
    const result = await host(
      `const limited = Sandbox.builder().fsRead(...SYSTEM).maxMemory('64M').maxProcesses(5).build();
const sandboxed = await limited.spawn([PYTHON, '-c', ${JSON.stringify(FLOOD)}, '1000']);
const next = lines(sandboxed);
const connected = await next();
// Meanwhile this process can still open files and start sandboxes.
const { openSync, closeSync } = await import('node:fs');
closeSync(openSync('/dev/null', 'r'));
const other = await Sandbox.builder().fsRead(...SYSTEM).maxProcesses(5).build().run(['/bin/echo', 'still here']);
sandboxed.stdin.write('\\n');
const forked = await next();
const allocated = await next();
const status = await sandboxed.wait();
return { connected, forked, allocated, killedBy: status.killedBy, other: other.stdout.toString() };`,
      400,
    );
    expect(result.connected).toMatch(/^connected \d+$/);
    expect(Number(String(result.connected).split(' ')[1])).toBeGreaterThan(300);
    expect(result.other).toBe('still here\n');
    // The program is one of the five.
    const forked = Number(String(result.forked).split(' ')[1]);
    expect(forked).toBeLessThanOrEqual(4);
    expect(result.allocated).toBeNull();
    expect(result.killedBy).toMatchObject({ reason: 'memory', limit: 64 * 1024 * 1024 });
  });

  it("connections sending megabytes without a newline leave the supervisor's heap alone (finding 4)", async () => {
    const result = await host(
      `const sandbox = Sandbox.builder().fsRead(...SYSTEM).maxProcesses(10).build();
const heap = () => { globalThis.gc(); const m = process.memoryUsage(); return m.heapUsed + m.external; };
// The supervisor and its modules loaded, so that the figure is the attack's.
await sandbox.run(['/bin/true']);
const before = heap();
let peak = before;
const sampler = setInterval(() => { peak = Math.max(peak, heap()); }, 20);
const run = await sandbox.run([PYTHON, '-c', ${JSON.stringify(HOARD)}, '150', '2']);
clearInterval(sampler);
peak = Math.max(peak, heap());
return { full: run.stdout.toString().trim(), stderr: run.stderr.toString(), exitCode: run.exitCode, growth: peak - before };`,
    );
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    // 300 connections of 1 MiB were tried; none got through.
    expect(result.full).toBe('0');
    // At most the per-sandbox connections' requests were held (~1 MiB);
    // without the bounds the heap grew by the whole 300 MiB.
    expect(DELEGATION_MAX_CONNECTIONS_PER_SANDBOX * DELEGATION_MAX_REQUEST).toBeLessThan(
      2 * 1024 * 1024,
    );
    expect(result.growth as number).toBeLessThan(16 * 1024 * 1024);
    console.log(
      `300 connections × 1 MiB: the supervisor held ${((result.growth as number) / 1024 / 1024).toFixed(1)} MiB more at most`,
    );
  });
});

// A child connects to the supervisor, hands the connection to its parent and
// exits; the parent reaps it, prints its pid and waits. Told to go, it forks
// (the test has made that fork take the freed pid): the new process starts a
// reaper and program as an inner launcher would, and the parent sends a
// request for them on the old connection, as if the new process had asked.
// Connects to the delegation socket and asks it to take on the processes
// named on the command line.
const ASK = `
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ['SANDLOCK_SUPERVISOR'])
request = {'reaperPid': int(sys.argv[1]), 'programPid': int(sys.argv[2]), 'policy': {'maxProcesses': 1}}
s.sendall(json.dumps(request).encode() + b'\\n')
print(s.recv(4096).decode().strip(), flush=True)
`;

describe('who asks the delegation socket', () => {
  // Every connect of a supervised sandbox is made by its reaper (the
  // destinations module of @sandlock/network): the process that connected
  // is the reaper, pinned by its pidfd and alive as long as the sandbox, so
  // a pid reused after the connect (finding 10) names no one. What it may
  // ask for is processes of its own sandbox.
  it('is the sandbox whose reaper connected: processes outside it are refused (finding 10)', async () => {
    const outside = spawn('/bin/sh', ['-c', 'sleep 60 & echo $!; wait'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const program = await new Promise<number>((resolve) =>
        outside.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
      );
      const result = await systemBuilder()
        .maxProcesses(20)
        .build()
        .run([PYTHON, '-c', ASK, String(outside.pid), String(program)], {
          encoding: 'utf8',
          timeout: 60_000,
        });
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout)).toEqual({
        ok: false,
        error: expect.stringMatching(/is not a child of the asking process/),
      });
    } finally {
      outside.kill('SIGKILL');
    }
  }, 120_000);
});
