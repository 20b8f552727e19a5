import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RAW_SOCKETS_NEED_CAPABILITY } from '../src/confine.js';
import { AbortError, CommandError, SandboxError } from '../src/index.js';
import { alive, eventually, processState, systemBuilder } from './helpers.js';

// The system's python3 (under /usr, which the tests grant), not a user's shim.
const PYTHON = '/usr/bin/python3';
const hasPython = spawnSync(PYTHON, ['-c', 'pass']).status === 0;
if (!hasPython) console.warn(`skipping the abstract unix socket test: ${PYTHON} is not installed`);

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'sandlock-run-'));
  mkdirSync(join(work, 'ro'));
  mkdirSync(join(work, 'rw'));
  mkdirSync(join(work, 'ro', 'secret'));
  writeFileSync(join(work, 'ro', 'visible.txt'), 'visible\n');
  writeFileSync(join(work, 'ro', 'secret', 'key.txt'), 'secret\n');
  writeFileSync(join(work, 'outside.txt'), 'outside\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('Sandbox.run on the real kernel', () => {
  it('runs a command and separates stdout and stderr', async () => {
    const result = await systemBuilder()
      .build()
      .run(['/bin/sh', '-c', 'echo out; echo err >&2; exit 42']);
    expect(result).toMatchObject({ exitCode: 42, signal: null, timedOut: false });
    expect(result.stdout.toString()).toBe('out\n');
    expect(result.stderr.toString()).toBe('err\n');
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it('enforces read, write and deny rules', async () => {
    const sandbox = systemBuilder()
      .fsRead(join(work, 'ro'))
      .fsWrite(join(work, 'rw'))
      .fsDeny(join(work, 'ro', 'secret'))
      .build();
    const script = [
      `cat ${work}/ro/visible.txt`,
      `cat ${work}/outside.txt || echo outside-denied`,
      `echo x > ${work}/ro/new.txt || echo ro-write-denied`,
      `echo written > ${work}/rw/new.txt && cat ${work}/rw/new.txt`,
      `cat ${work}/ro/secret/key.txt || echo secret-denied`,
      `ls ${work}/ro/secret || echo secret-list-denied`,
    ].join('; ');
    const result = await sandbox.run(['/bin/sh', '-c', script]);
    expect(result.stdout.toString()).toBe(
      'visible\noutside-denied\nro-write-denied\nwritten\nsecret-denied\nsecret-list-denied\n',
    );
    expect(result.stderr.toString()).toMatch(/Permission denied/);
    expect(readFileSync(join(work, 'rw', 'new.txt'), 'utf8')).toBe('written\n');
  });

  it('passes stdin through and handles 50 MiB on each stream', async () => {
    const size = 50 * 1024 * 1024;
    const input = Buffer.alloc(size, 'a');
    const result = await systemBuilder()
      .fsRead('/dev/zero')
      .build()
      .run(['/bin/sh', '-c', `cat; head -c ${size} /dev/zero >&2`], { input });
    expect(result.exitCode).toBe(0);
    expect(result.stdout.equals(input)).toBe(true);
    expect(result.stderr.equals(Buffer.alloc(size))).toBe(true);
  }, 120_000);

  it('cleans the environment and sets cwd', async () => {
    const result = await systemBuilder()
      .cleanEnv()
      .env('ONLY', 'this')
      .cwd(join(work, 'ro'))
      .build()
      .run(['/usr/bin/env'], { env: { ALSO: 'that' } });
    // Every sandbox is supervised (fs-meta): its program is also told the
    // supervisor's socket, for sandboxes started inside it (nesting).
    expect(result.stdout.toString().replace(/^SANDLOCK_SUPERVISOR=\/.*\n/m, '')).toBe(
      'ONLY=this\nALSO=that\n',
    );
    const pwd = await systemBuilder().cwd(join(work, 'ro')).build().run(['/bin/pwd']);
    expect(pwd.stdout.toString()).toBe(`${join(work, 'ro')}\n`);
  });

  it('ends only when every process of the sandbox has ended', async () => {
    // dash points a background job's stdin at /dev/null.
    const result = await systemBuilder()
      .fsWrite('/dev/null')
      .build()
      .run(['/bin/sh', '-c', '(sleep 0.3; echo late) & echo early']);
    expect(result.stdout.toString()).toBe('early\nlate\n');
    expect(result.durationMs).toBeGreaterThan(250);
  });

  it('kills every process on timeout, including a setsid grandchild', async () => {
    const pidFile = join(work, 'rw', 'grandchild.pid');
    const result = await systemBuilder()
      .fsWrite(join(work, 'rw'), '/dev/null')
      .build()
      .run(['/bin/sh', '-c', `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 60' & sleep 60`], {
        timeout: 500,
      });
    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGKILL');
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    expect(grandchild).toBeGreaterThan(1);
    expect(alive(grandchild)).toBe(false);
  });

  it('reports a command that does not exist or is not executable', async () => {
    const sandbox = systemBuilder().build();
    await expect(sandbox.run(['no-such-command-sandlock'])).rejects.toThrow(CommandError);
    await expect(sandbox.run(['no-such-command-sandlock'])).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(sandbox.run([join(work, 'ro', 'visible.txt')])).rejects.toMatchObject({
      code: 'EACCES',
    });
  });

  it('refuses to exec a program outside the readable paths, before starting and in the kernel', async () => {
    const program = join(work, 'true-copy');
    copyFileSync('/bin/true', program);
    chmodSync(program, 0o755);
    const error = await systemBuilder()
      .build()
      .run([program])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).code).toBe('EACCES');
    expect((error as CommandError).message).toBe(
      `sandlock: ${program}: ${program} is outside what the sandbox may execute; grant its directory with -r ${work} (fsRead('${work}'))`,
    );
    // A script the sandbox may run whose interpreter it may not: the kernel refuses, naming the step.
    const granted = join(work, 'granted');
    mkdirSync(granted, { recursive: true });
    const script = join(granted, 'script');
    writeFileSync(script, `#!${program}\n`);
    chmodSync(script, 0o755);
    const refused = await systemBuilder()
      .fsRead(granted)
      .build()
      .run([script])
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SandboxError);
    expect((refused as SandboxError).message).toBe(
      `sandlock: execve ${script} failed: EACCES (Permission denied)`,
    );
    expect((refused as SandboxError).step).toBe(`execve ${script}`);
  });

  it('cannot signal processes outside the sandbox', async () => {
    const result = await systemBuilder()
      .build()
      .run(['/bin/sh', '-c', `kill -0 ${process.pid} && echo reached || echo blocked`]);
    expect(result.stdout.toString()).toBe('blocked\n');
  });

  it.skipIf(!hasPython)('cannot reach an abstract unix socket created outside', async () => {
    const name = `sandlock-test-${process.pid}`;
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end('hello');
    });
    await new Promise<void>((resolve) => server.listen(`\0${name}`, resolve));
    try {
      // libuv pads abstract names with NULs to the full sun_path length.
      const address = `b'\\0${name}' + b'\\0' * ${107 - name.length}`;
      const program = `import socket\ntry:\n    s = socket.socket(socket.AF_UNIX)\n    s.connect(${address})\n    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)`;
      const outside = spawnSync(PYTHON, ['-c', program]);
      expect(outside.stdout.toString()).toBe('connected\n');
      // Supervised: its reaper connects, within Landlock's scope (EPERM).
      const supervised = systemBuilder().netAllow('tcp://127.0.0.1:9').build();
      const result = await supervised.run([PYTHON, '-c', program]);
      expect(result.stdout.toString()).toBe('refused 1\n');
      // Not supervised: it may make no Unix socket at all (EACCES).
      const plain = await systemBuilder().build().run([PYTHON, '-c', program]);
      expect(plain.stdout.toString()).toBe('refused 13\n');
    } finally {
      server.close();
    }
  });

  it('denies TCP connect unless the port is allowed', async () => {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const probe = `exec 3<>/dev/tcp/127.0.0.1/${port} && echo connected || echo denied`;
    try {
      const bash = ['/bin/bash', '-c', probe];
      const denied = await systemBuilder().build().run(bash);
      expect(denied.stdout.toString()).toBe('denied\n');
      const allowed = await systemBuilder().netConnect(port).build().run(bash);
      expect(allowed.stdout.toString()).toBe('connected\n');
    } finally {
      server.close();
    }
  });

  it.skipIf(!hasPython)(
    'says that allowing raw sockets cannot work: the sandbox has no CAP_NET_RAW',
    async () => {
      const probe = [
        'import errno, socket',
        'try:',
        '    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)',
        '    print("raw socket")',
        'except OSError as e:',
        '    print(errno.errorcode[e.errno])',
      ].join('\n');
      const allowed = await systemBuilder()
        .noRawSockets(false)
        .build()
        .spawn([PYTHON, '-c', probe]);
      expect(allowed.warnings).toContain(RAW_SOCKETS_NEED_CAPABILITY);
      const chunks: Buffer[] = [];
      allowed.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
      const [status] = await Promise.all([allowed.wait(), once(allowed.stdout!, 'end')]);
      expect(status).toMatchObject({ exitCode: 0 });
      expect(Buffer.concat(chunks).toString()).toBe('EPERM\n');
      const refused = await systemBuilder().build().spawn(['true']);
      expect(refused.warnings).not.toContain(RAW_SOCKETS_NEED_CAPABILITY);
      await refused.wait();
    },
  );
});

describe('SandboxProcess', () => {
  it('kills, pauses and resumes every process, and rejects calls once ended', async () => {
    const sandboxed = await systemBuilder()
      .build()
      .spawn(['/bin/sh', '-c', 'setsid sleep 60 & exec sleep 60'], {
        stdio: ['ignore', 'ignore', 'ignore'],
      });
    expect(sandboxed.pid).toBeGreaterThan(0);
    expect(sandboxed.running).toBe(true);
    // Pause once the shell has exec'd sleep: a shell stopped in the middle of
    // vfork() shows as 'D' (waiting for its stopped child), not 'T'.
    const command = () => readFileSync(`/proc/${sandboxed.pid}/comm`, 'utf8').trim();
    expect(await eventually(() => command() === 'sleep')).toBe(true);
    await sandboxed.pause();
    // The reaper passes the stop on asynchronously: wait for it to land.
    expect(await eventually(() => processState(sandboxed.pid) === 'T')).toBe(true);
    await sandboxed.resume();
    expect(await eventually(() => processState(sandboxed.pid) !== 'T')).toBe(true);
    await sandboxed.kill();
    const status = await sandboxed.wait();
    expect(status.signal).toBe('SIGKILL');
    await expect(sandboxed.kill()).rejects.toThrow(
      'sandlock: cannot kill: the sandbox is not running (it was killed by SIGKILL)',
    );
    await expect(sandboxed.pause()).rejects.toThrow(SandboxError);
  });

  it('passes SIGTERM on to every process and refuses signals the reaper does not forward', async () => {
    const sandboxed = await systemBuilder()
      .build()
      .spawn(
        [
          '/bin/sh',
          '-c',
          'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.05; done',
        ],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
    const out: Buffer[] = [];
    const text = () => Buffer.concat(out).toString();
    sandboxed.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    await expect(sandboxed.kill('SIGALRM')).rejects.toThrow(/cannot send SIGALRM to a sandbox/);
    expect(sandboxed.running).toBe(true);
    // The trap is set.
    expect(await eventually(() => text() === 'ready\n')).toBe(true);
    await sandboxed.kill('SIGTERM');
    const status = await sandboxed.wait();
    expect(status.exitCode).toBe(3);
    expect(text()).toBe('ready\ngot TERM\n');
  });

  it('kills and reaps on async dispose', async () => {
    let pid = 0;
    {
      await using sandboxed = await systemBuilder()
        .build()
        .spawn(['/bin/sleep', '60'], { stdio: ['ignore', 'ignore', 'ignore'] });
      pid = sandboxed.pid;
      expect(alive(pid)).toBe(true);
    }
    expect(alive(pid)).toBe(false);
  });

  it('stops on an AbortSignal, rejecting with an AbortError', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = await systemBuilder()
      .build()
      .run(['/bin/sleep', '60'], { signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AbortError);
    expect((error as AbortError).cause).toBe(controller.signal.reason);
  });
});
