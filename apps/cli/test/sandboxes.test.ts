// sandlock ps, inspect and kill, against sandboxes that `sandlock run`
// processes started; each test has its own XDG_RUNTIME_DIR (the registry).
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, running } from '../../../tools/test-support/index.js';
import { CLI, SYSTEM, sandlock } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const work = mkdtempSync(join(tmpdir(), 'sandlock-cli-sandboxes-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let env: NodeJS.ProcessEnv;
const runs: ChildProcess[] = [];
beforeEach(() => {
  env = { ...process.env, XDG_RUNTIME_DIR: mkdtempSync(join(work, 'runtime-')) };
});
afterEach(async () => {
  for (const child of runs.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  }
});

/** `sandlock` with this test's registry. */
function cli(args: readonly string[]) {
  return sandlock(args, { env });
}

/** A `sandlock run` left running; its stdout is collected in `out`. */
function background(args: readonly string[]): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [CLI, 'run', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  runs.push(child);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk;
  });
  return { child, out: () => out };
}

interface Entry {
  name: string;
  pid: number;
  reaperPid: number;
  command: string[];
  policy: Record<string, unknown>;
  ports: unknown[];
}

function listed(): Entry[] {
  const result = cli(['ps', '--json']);
  expect(result.stderr).toBe('');
  return JSON.parse(result.stdout) as Entry[];
}

async function listedAs(names: string[]): Promise<Entry[]> {
  let entries: Entry[] = [];
  const seen = await eventually(() => {
    entries = listed();
    return entries.map((entry) => entry.name).join(',') === names.join(',');
  });
  expect(seen, JSON.stringify(entries)).toBe(true);
  return entries;
}

describe('sandlock ps, inspect, kill', () => {
  it('ps lists two named sandboxes; inspect shows the policy; kill ends one', async () => {
    const web = background(['--name', 'web', ...SYSTEM, '-m', '64M', '--', 'sleep', '300']);
    await listedAs(['web']);
    background(['--name', 'job.2', ...SYSTEM, '-e', 'sleep 300; echo "two words"']);
    const [first, second] = await listedAs(['web', 'job.2']);
    expect(first).toMatchObject({ command: ['sleep', '300'], ports: [] });
    expect(second!.command).toEqual(['/bin/sh', '-c', 'sleep 300; echo "two words"']);

    const table = cli(['ps']);
    expect(table.status).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header!.split(/\s+/)).toEqual(['NAME', 'PID', 'UPTIME', 'COMMAND', 'PORTS']);
    expect(rows[0]).toMatch(new RegExp(`^web\\s+${first!.pid}\\s+\\d+s\\s+sleep 300\\s+-$`));
    expect(rows[1]).toMatch(
      new RegExp(`^job\\.2\\s+${second!.pid}\\s+\\d+s\\s+/bin/sh -c 'sleep 300; echo "two words"'`),
    );

    const inspected = cli(['inspect', 'web']);
    expect(inspected.status).toBe(0);
    expect(inspected.stdout).toContain(`# sandbox web: pid ${first!.pid}`);
    expect(inspected.stdout).toContain('[limits]\nmemory = 67108864\n');
    expect(inspected.stdout).toContain(`[filesystem]\nread = ["/usr"`);
    const json = JSON.parse(cli(['inspect', '--json', 'web']).stdout) as Entry;
    expect(json.policy.maxMemory).toBe(64 * 1024 * 1024);
    // Options may follow the name, as with kill(1).
    expect(JSON.parse(cli(['inspect', 'web', '--json']).stdout)).toEqual(json);
    // The profile form runs the same policy.
    const profiles = join(work, 'config', 'sandlock', 'profiles');
    mkdirSync(profiles, { recursive: true });
    writeFileSync(join(profiles, 'web.toml'), inspected.stdout);
    const policy = sandlock(['policy', '-p', 'web'], {
      env: { ...env, XDG_CONFIG_HOME: join(work, 'config') },
    });
    expect(JSON.parse(policy.stdout)).toEqual(json.policy);

    const killed = cli(['kill', 'web']);
    expect(killed).toMatchObject({ status: 0, stderr: '' });
    // sandlock run reports the SIGKILL as 128+9.
    const [code] = await once(web.child, 'close');
    expect(code).toBe(137);
    expect(running(first!.pid)).toBe(false);
    expect(listed().map((entry) => entry.name)).toEqual(['job.2']);
  });

  it('kill ends a grandchild that left for a session of its own', async () => {
    const script = `
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        time.sleep(300)
    os._exit(0)
time.sleep(300)
`;
    const tree = background(['--name', 'tree', ...SYSTEM, '--', PYTHON, '-c', script]);
    expect(await eventually(() => tree.out().endsWith('\n'))).toBe(true);
    const grandchild = Number(tree.out().trim());
    expect(running(grandchild)).toBe(true);
    expect(cli(['kill', 'tree', '--signal', 'KILL']).status).toBe(0);
    expect(running(grandchild)).toBe(false);
    expect(listed()).toEqual([]);
  });

  it('a name held by a running sandbox is refused; unknown names exit 1; usage errors 125', async () => {
    background(['--name', 'only', ...SYSTEM, '--', 'sleep', '300']);
    await listedAs(['only']);
    const again = cli(['run', '--name', 'only', ...SYSTEM, '--', 'echo', 'ran']);
    expect(again.status).toBe(125);
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/a running sandbox is already called 'only' \(pid \d+\)/);
    expect(cli(['kill', 'other'])).toMatchObject({
      status: 1,
      stderr: "sandlock: no running sandbox is called 'other' (sandlock ps lists them)\n",
    });
    expect(cli(['inspect', 'other']).status).toBe(1);
    for (const args of [
      ['kill'],
      ['kill', '--signal', 'SEGV', 'only'],
      ['kill', 'a', 'b'],
      ['kill', 'only', '--signal'],
      ['kill', 'only', '--', '--signal', 'TERM'],
      ['inspect'],
      ['ps', 'extra'],
      ['ps', '--bogus'],
      ['run', '--name', '-x', ...SYSTEM, '--', 'true'],
    ]) {
      expect(cli(args).status, args.join(' ')).toBe(125);
    }
    // TERM is passed on: the program ends, sandlock run reports 128+15.
    expect(cli(['kill', '-s', '15', 'only']).status).toBe(0);
    await listedAs([]);
    expect(cli(['ps']).stdout).toBe('NAME  PID  UPTIME  COMMAND  PORTS\n');
  });

  it('--name does not set the host name', () => {
    const result = cli(['run', ...SYSTEM, '--name', 'job-7', '--', 'uname', '-n']);
    expect(result.stdout).toBe(`${hostname()}\n`);
  });

  it('a registry directory its group may write is refused', () => {
    const dir = join(env.XDG_RUNTIME_DIR!, 'sandlock');
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o775);
    const result = cli(['ps']);
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(
      /may be written by its group or others \(mode 775\); refusing it/,
    );
    expect(cli(['run', ...SYSTEM, '--', 'true']).status).toBe(125);
  });
});

describe('/proc/net inside a sandbox', () => {
  let host: Server;
  afterEach(() => host?.close());

  it("shows the sandbox's own listener and not a host listener on loopback", async () => {
    host = createServer().listen(0, '127.0.0.1');
    await once(host, 'listening');
    const hostPort = (host.address() as { port: number }).port;
    const own = 30000 + (process.pid % 20000);
    const hex = (port: number) => `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    const script = `
import socket
s = socket.socket()
s.bind(('127.0.0.1', ${own}))
s.listen()
print(open('/proc/net/tcp').read(), end='')
`;
    const result = cli([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '--net-bind',
      String(own),
      '--',
      PYTHON,
      '-c',
      script,
    ]);
    expect(result.stderr).toBe('');
    const [header, ...lines] = result.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^\s+sl\s+local_address rem_address\s+st /);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${hex(own)} 00000000:0000 0A`);
    expect(result.stdout).not.toContain(hex(hostPort));
    expect(readFileSync('/proc/net/tcp', 'utf8')).toContain(hex(hostPort));
  });
});
