import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { close } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsoleSocket, readTerminal, writeTerminal } from './console-socket.js';
import { missingForContainerd, SANDLOCK_OCI } from './containerd-lab.js';

// The runtime driven as the shim drives it, without containerd: a bundle of
// static busybox, --root and --log of this test's own.
const missing = missingForContainerd();
if (missing !== null) console.warn(`runtime command tests skipped: ${missing}`);

const dir = mkdtempSync(join(tmpdir(), 'sandlock-oci-commands-'));
const root = join(dir, 'state');
const log = join(dir, 'log.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runtime(...args: string[]) {
  // create's stdout and stderr are the container's, which its supervisor keeps:
  // a pipe would not end before the container does.
  const io = args[0] === 'create' ? 'ignore' : 'pipe';
  const result = spawnSync(
    process.execPath,
    [SANDLOCK_OCI, '--root', root, '--log', log, '--log-format', 'json', ...args],
    { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', io, io] },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function lastError(): { level: string; msg: string; time: string } {
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  const errors = lines.map((line) => JSON.parse(line)).filter((line) => line.level === 'error');
  return errors.at(-1);
}

function bundle(
  args: string[],
  applets = ['sh', 'sleep', 'dd', 'cat'],
  resources?: Record<string, unknown>,
): string {
  const path = mkdtempSync(join(dir, 'bundle-'));
  const bin = join(path, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  for (const applet of applets) linkSync(join(bin, 'busybox'), join(bin, applet));
  writeFileSync(
    join(path, 'config.json'),
    JSON.stringify({
      ociVersion: '1.0.2',
      root: { path: 'rootfs' },
      process: { args, env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } },
      mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
      ...(resources !== undefined ? { linux: { resources } } : {}),
    }),
  );
  return path;
}

/** A process that exists and has not ended (a zombie has). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 60 s`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

describe.skipIf(missing !== null)('the runtime commands', () => {
  it('create leaves the container created; start runs it; a stopped one answers as the shim expects', async () => {
    const path = bundle(['sh', '-c', 'exit 0']);
    const pidFile = join(path, 'init.pid');
    expect(runtime('create', '--bundle', path, '--pid-file', pidFile, 'c1').status).toBe(0);
    // Digits and no newline, as runc writes it.
    expect(readFileSync(pidFile, 'utf8')).toMatch(/^\d+$/);
    const created = JSON.parse(runtime('state', 'c1').stdout);
    expect(created).toMatchObject({ id: 'c1', status: 'created', bundle: path });
    expect(created.pid).toBe(Number(readFileSync(pidFile, 'utf8')));
    expect(new Date(created.created).toISOString()).toBe(created.created);
    expect(runtime('start', 'c1').status).toBe(0);
    await until(
      'the container stops',
      () => JSON.parse(runtime('state', 'c1').stdout).status === 'stopped',
    );
    const kill = runtime('kill', 'c1', '9');
    expect(kill.status).toBe(1);
    expect(lastError().msg).toContain('container not running');
    expect(runtime('start', 'c1').status).toBe(1);
    expect(runtime('delete', 'c1').status).toBe(0);
    expect(existsSync(join(root, 'c1'))).toBe(false);
    expect(runtime('state', 'c1').status).toBe(1);
    expect(lastError().msg).toContain('does not exist');
    // What the shim asks next (bin/fast-path.cjs answers it): success, and nothing said.
    expect(runtime('delete', '--force', 'c1')).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(runtime('delete', '--force', '../c1').status).toBe(1);
    expect(lastError().msg).toContain('is not a container ID');
  });

  it('kill, ps, pause and resume reach a running container; delete --force ends it', async () => {
    const path = bundle(['sleep', '1000']);
    expect(runtime('create', '--bundle', path, 'c2').status).toBe(0);
    expect(runtime('start', 'c2').status).toBe(0);
    const pids = JSON.parse(runtime('ps', '--format', 'json', 'c2').stdout) as number[];
    expect(pids.length).toBeGreaterThan(1);
    expect(runtime('pause', 'c2').status).toBe(0);
    expect(JSON.parse(runtime('state', 'c2').stdout).status).toBe('paused');
    expect(runtime('resume', 'c2').status).toBe(0);
    expect(JSON.parse(runtime('state', 'c2').stdout).status).toBe('running');
    expect(runtime('delete', 'c2').status).toBe(1);
    expect(lastError().msg).toContain('not stopped');
    expect(runtime('delete', '--force', 'c2').status).toBe(0);
    expect(existsSync(join(root, 'c2'))).toBe(false);
    await until('every process of the container ends', () => pids.every((pid) => !running(pid)));
  });

  it('exec with a terminal: its master to the console socket, the process in a session the terminal controls', async () => {
    const path = bundle(['sleep', '1000'], ['sh', 'sleep', 'tty', 'stty', 'ps']);
    expect(runtime('create', '--bundle', path, 'c5').status).toBe(0);
    expect(runtime('start', 'c5').status).toBe(0);
    const listener = new ConsoleSocket(join(dir, 'c5.sock'));
    try {
      const processFile = join(path, 'exec.json');
      writeFileSync(
        processFile,
        JSON.stringify({
          terminal: true,
          consoleSize: { height: 33, width: 101 },
          args: [
            'sh',
            '-c',
            'tty; stty size; echo via-dev-tty > /dev/tty; read line; echo "got:$line"; sleep 1000',
          ],
          env: ['PATH=/bin'],
          cwd: '/',
          user: { uid: 0, gid: 0 },
        }),
      );
      const pidFile = join(path, 'exec.pid');
      const exec = runtime(
        'exec',
        '--process',
        processFile,
        '--detach',
        '--pid-file',
        pidFile,
        '--console-socket',
        listener.path,
        'c5',
      );
      expect(exec.status, exec.stderr).toBe(0);
      const execPid = Number(readFileSync(pidFile, 'utf8'));
      const { name, master } = await listener.receive();
      try {
        expect(name).toMatch(/^\/dev\/pts\/\d+$/);
        const said = await readTerminal(master, (text) => text.includes('via-dev-tty'));
        expect(said).toBe(`${name}\r\n33 101\r\nvia-dev-tty\r\n`);
        writeTerminal(master, 'hello\n');
        expect(await readTerminal(master, (text) => text.includes('got:'))).toContain('got:hello');
        // ^C reaches the foreground process group: the terminal controls the process's session.
        writeTerminal(master, '\x03');
        await until('^C ends the exec’d process', () => !running(execPid));
      } finally {
        close(master);
      }
    } finally {
      listener.close();
      expect(runtime('delete', '--force', 'c5').status).toBe(0);
    }
  }, 180_000);

  it('create with a terminal: the first process leads a session the terminal controls', async () => {
    // sh catches SIGINT (the handler is not inherited by sleep): it says how sleep ended.
    const script =
      'trap "echo trapped" INT; tty; echo via-dev-tty > /dev/tty; sleep 1000; echo "sleep-ended:$?"';
    const path = bundle(['sh', '-c', script], ['sh', 'sleep', 'tty']);
    const configFile = join(path, 'config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8'));
    config.process.terminal = true;
    writeFileSync(configFile, JSON.stringify(config));
    const listener = new ConsoleSocket(join(dir, 'c7.sock'));
    try {
      const create = runtime('create', '--bundle', path, '--console-socket', listener.path, 'c7');
      expect(create.status).toBe(0);
      const { name, master } = await listener.receive();
      try {
        expect(runtime('start', 'c7').status).toBe(0);
        const said = await readTerminal(master, (text) => text.includes('via-dev-tty'));
        expect(said).toBe(`${name}\r\nvia-dev-tty\r\n`);
        // ^C reaches the foreground process group: the terminal controls the process's session.
        writeTerminal(master, '\x03');
        expect(await readTerminal(master, (text) => text.includes('sleep-ended:'))).toContain(
          'sleep-ended:130',
        );
        await until(
          'the container stops',
          () => JSON.parse(runtime('state', 'c7').stdout).status === 'stopped',
        );
      } finally {
        close(master);
      }
    } finally {
      listener.close();
      expect(runtime('delete', '--force', 'c7').status).toBe(0);
    }
  }, 180_000);

  it('exec with a terminal and a console socket nobody listens on: a clear error, nothing started', () => {
    const path = bundle(['sleep', '1000']);
    expect(runtime('create', '--bundle', path, 'c6').status).toBe(0);
    expect(runtime('start', 'c6').status).toBe(0);
    try {
      const before = runtime('ps', '--format', 'json', 'c6').stdout;
      const processFile = join(path, 'exec.json');
      writeFileSync(
        processFile,
        JSON.stringify({
          terminal: true,
          args: ['sleep', '1000'],
          env: ['PATH=/bin'],
          cwd: '/',
          user: { uid: 0, gid: 0 },
        }),
      );
      const pidFile = join(path, 'exec.pid');
      const missingSocket = join(dir, 'nobody-listens.sock');
      const exec = runtime(
        'exec',
        '--process',
        processFile,
        '--detach',
        '--pid-file',
        pidFile,
        '--console-socket',
        missingSocket,
        'c6',
      );
      expect(exec.status).toBe(1);
      expect(lastError().msg).toContain(
        `cannot send the terminal to the console socket ${missingSocket}`,
      );
      expect(existsSync(pidFile)).toBe(false);
      expect(runtime('ps', '--format', 'json', 'c6').stdout).toBe(before);
    } finally {
      expect(runtime('delete', '--force', 'c6').status).toBe(0);
    }
  });

  it('not as root, refuses another process.user, naming the field', () => {
    // Everything the runtime reads or writes is reachable by nobody (65534).
    const own = mkdtempSync(join(tmpdir(), 'sandlock-oci-nobody-'));
    try {
      chmodSync(own, 0o755);
      const path = join(own, 'bundle');
      mkdirSync(join(path, 'rootfs'), { recursive: true });
      writeFileSync(
        join(path, 'config.json'),
        JSON.stringify({
          ociVersion: '1.0.2',
          root: { path: 'rootfs' },
          process: { args: ['/bin/true'], cwd: '/', user: { uid: 1000, gid: 1000 } },
        }),
      );
      const state = join(own, 'state');
      mkdirSync(state);
      chownSync(state, 65534, 65534);
      const result = spawnSync(
        process.execPath,
        [SANDLOCK_OCI, '--root', state, 'create', '--bundle', path, 'nobody'],
        { encoding: 'utf8', timeout: 60_000, uid: 65534, gid: 65534, env: { HOME: own } },
      );
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('config.json: process.user.uid: 1000:1000');
      expect(result.stderr).toContain('not root');
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('features and --version', () => {
    const features = JSON.parse(runtime('features').stdout);
    expect(features.linux.seccomp.enabled).toBe(true);
    expect(runtime('--version').stdout).toMatch(/^sandlock-oci version /);
  });
});
