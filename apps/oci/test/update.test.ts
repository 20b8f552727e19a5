import { spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingForContainerd, SANDLOCK_OCI } from './containerd-lab.js';

// `update` of a running container's limits, through the runtime's commands
// as the shim drives them: a bundle of static busybox, --root and --log of
// this test's own.
const missing = missingForContainerd();
if (missing !== null) console.warn(`runtime update tests skipped: ${missing}`);

const dir = mkdtempSync(join(tmpdir(), 'sandlock-oci-update-'));
const root = join(dir, 'state');
const log = join(dir, 'log.json');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1024 * 1024;

function runtime(args: string[], input?: string) {
  // create's stdout and stderr are the container's, which its supervisor keeps.
  const io = args[0] === 'create' ? 'ignore' : 'pipe';
  const result = spawnSync(
    process.execPath,
    [SANDLOCK_OCI, '--root', root, '--log', log, '--log-format', 'json', ...args],
    {
      encoding: 'utf8',
      timeout: 60_000,
      input,
      stdio: [input === undefined ? 'ignore' : 'pipe', io, io],
    },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function logLines(level: string): string[] {
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: string; msg: string })
    .filter((line) => line.level === level)
    .map((line) => line.msg);
}

/** A container of static busybox running `script`, started; returns its rootfs. */
function started(id: string, script: string, resources: Record<string, unknown> = {}): string {
  const rootfs = created(id, script, resources);
  expect(runtime(['start', id]).status).toBe(0);
  return rootfs;
}

/** The same, created only. */
function created(id: string, script: string, resources: Record<string, unknown>): string {
  const path = mkdtempSync(join(dir, 'bundle-'));
  const bin = join(path, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  // Where the device nodes are shown.
  mkdirSync(join(path, 'rootfs', 'dev'));
  writeFileSync(join(bin, 'busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  for (const applet of ['sh', 'sleep', 'dd', 'cat']) {
    linkSync(join(bin, 'busybox'), join(bin, applet));
  }
  writeFileSync(
    join(path, 'config.json'),
    JSON.stringify({
      ociVersion: '1.0.2',
      root: { path: 'rootfs' },
      process: { args: ['sh', '-c', script], env: ['PATH=/bin'], cwd: '/' },
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc' },
        // /dev/null, /dev/zero… (the runtime's own nodes).
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs' },
      ],
      linux: { resources },
    }),
  );
  expect(runtime(['create', '--bundle', path, id]).status).toBe(0);
  return join(path, 'rootfs');
}

function stopped(id: string): boolean {
  return JSON.parse(runtime(['state', id]).stdout).status === 'stopped';
}

function pidsOf(id: string): number[] {
  return JSON.parse(runtime(['ps', '--format', 'json', id]).stdout) as number[];
}

/** A line of /proc/PID/status (null once the process has gone). */
function statusLine(pid: number, name: string): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** 64 MiB held: dd's buffer, filled, blocked on a pipe nobody reads. */
const HOLD_64M = 'dd if=/dev/zero bs=64M count=1 2>/dev/null | sleep 1000';

/** The anonymous memory of the workload's processes (not the supervisor's, which ps lists first), in bytes. */
function workloadMemory(id: string): number {
  let sum = 0;
  for (const pid of pidsOf(id).slice(1)) {
    sum += Number(/(\d+)/.exec(statusLine(pid, 'RssAnon') ?? '0')![1]) * 1024;
  }
  return sum;
}

/** MemTotal of the container's /proc/meminfo as the workload last copied it to /meminfo, in bytes. */
function memTotal(rootfs: string): number | null {
  try {
    const match = /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync(join(rootfs, 'meminfo'), 'utf8'));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within 60 s`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

describe.skipIf(missing !== null)('sandlock-oci update', () => {
  it('raises memory.limit: a program the old limit would have killed keeps running', async () => {
    const script = `while [ ! -e /go ]; do sleep 0.05; done; ${HOLD_64M}`;
    // The control: under 32 MiB it is killed.
    const control = started('u-control', script, { memory: { limit: 32 * MiB } });
    writeFileSync(join(control, 'go'), '');
    await until('the control is killed', () => stopped('u-control'));
    expect(runtime(['delete', 'u-control']).status).toBe(0);

    const rootfs = started('u-raise', script, { memory: { limit: 32 * MiB } });
    expect(runtime(['update', '--memory', String(128 * MiB), 'u-raise']).status).toBe(0);
    writeFileSync(join(rootfs, 'go'), '');
    await until('dd holds its 64 MiB', () => workloadMemory('u-raise') > 60 * MiB);
    // Many checks of the memory watch later (at most 100 ms apart), still there.
    await new Promise((done) => setTimeout(done, 1000));
    expect(stopped('u-raise')).toBe(false);
    expect(workloadMemory('u-raise')).toBeGreaterThan(60 * MiB);
    expect(runtime(['delete', '--force', 'u-raise']).status).toBe(0);
  }, 180_000);

  it('lowers memory.limit below the use: the container is killed; memory.swap is warned about', async () => {
    started('u-lower', HOLD_64M, { memory: { limit: 256 * MiB } });
    await until('dd holds its 64 MiB', () => workloadMemory('u-lower') > 60 * MiB);
    const workload = pidsOf('u-lower').slice(1);
    const update = runtime(
      ['update', '--resources', '-', 'u-lower'],
      JSON.stringify({ memory: { limit: 32 * MiB, swap: 32 * MiB } }),
    );
    expect(update.status).toBe(0);
    expect(logLines('warning')).toContain(
      'update: linux.resources.memory.swap: not enforced (the sandbox is killed above memory.limit)',
    );
    await until('the container is killed', () => stopped('u-lower'));
    for (const pid of workload) expect(statusLine(pid, 'State')).toBeNull();
    expect(runtime(['delete', 'u-lower']).status).toBe(0);
  });

  it('lowers pids.limit below the count: a fork fails with EAGAIN', async () => {
    const rootfs = started('u-pids', 'exec 2>/err; while :; do sleep 0.05; done', {
      pids: { limit: 20 },
    });
    expect(runtime(['update', '--pids-limit', '1', 'u-pids']).status).toBe(0);
    // busybox sh: "sh: can't fork: Resource temporarily unavailable" (strerror(EAGAIN)).
    await until('the shell fails to fork', () => {
      try {
        return readFileSync(join(rootfs, 'err'), 'utf8').includes(
          'Resource temporarily unavailable',
        );
      } catch {
        return false;
      }
    });
    expect(runtime(['delete', '--force', 'u-pids']).status).toBe(0);
  });

  it('before start, changes the policy the container starts with: a limit it had not', async () => {
    const rootfs = created('u-early', 'exec 2>/err; sleep 0; echo forked > /result', {});
    expect(runtime(['update', '--pids-limit', '1', 'u-early']).status).toBe(0);
    expect(runtime(['start', 'u-early']).status).toBe(0);
    await until('the container stops', () => stopped('u-early'));
    expect(readFileSync(join(rootfs, 'err'), 'utf8')).toContain('Resource temporarily unavailable');
    expect(existsSync(join(rootfs, 'result'))).toBe(false);
    expect(runtime(['delete', 'u-early']).status).toBe(0);
  });

  it.skipIf(availableParallelism() < 2)(
    'changes cpuset.cpus: every workload process, and those it starts afterwards, on the new CPUs',
    async () => {
      started('u-cpus', 'while :; do sleep 0.05; done');
      for (const [how, cpus] of [
        [['--cpuset-cpus', '1'], '1'],
        [['--resources', '-'], '0'],
      ] as const) {
        const before = new Set(pidsOf('u-cpus'));
        const input = how[0] === '--resources' ? JSON.stringify({ cpu: { cpus } }) : undefined;
        expect(runtime(['update', ...how, 'u-cpus'], input).status).toBe(0);
        // The supervisor is not the workload: ps lists it first.
        for (const pid of [...before].slice(1)) {
          expect([null, cpus]).toContain(statusLine(pid, 'Cpus_allowed_list'));
        }
        let later: number[] = [];
        await until('the shell forks again', () => {
          later = pidsOf('u-cpus').filter((pid) => !before.has(pid));
          return later.length > 0;
        });
        for (const pid of later) {
          expect([null, cpus]).toContain(statusLine(pid, 'Cpus_allowed_list'));
        }
      }
      expect(runtime(['delete', '--force', 'u-cpus']).status).toBe(0);
    },
  );

  it('refuses a field that does not map, or a limit the container was started without, naming it; nothing changes', async () => {
    const rootfs = started(
      'u-refuse',
      'while :; do cat /proc/meminfo > /meminfo.new; cat /meminfo.new > /meminfo; sleep 0.05; done',
      { memory: { limit: 64 * MiB } },
    );
    await until('the container shows its memory', () => memTotal(rootfs) === 64 * MiB);
    const kernel = runtime(
      ['update', '--resources', '-', 'u-refuse'],
      JSON.stringify({ memory: { limit: 128 * MiB, kernel: 1 } }),
    );
    expect(kernel.status).toBe(1);
    expect(logLines('error').at(-1)).toBe('update: linux.resources.memory.kernel: not supported');
    const pids = runtime(
      ['update', '--resources', '-', 'u-refuse'],
      JSON.stringify({ memory: { limit: 128 * MiB }, pids: { limit: 10 } }),
    );
    expect(pids.status).toBe(1);
    expect(logLines('error').at(-1)).toBe(
      'update: cannot update limits: linux.resources.pids.limit (maxProcesses): the sandbox was started with no process limit (its forks are not counted); a limit can be changed, not added',
    );
    // Still 64 MiB, some copies later; then a change that maps shows in /proc/meminfo.
    rmSync(join(rootfs, 'meminfo'), { force: true });
    await until('the workload copies /proc/meminfo again', () => memTotal(rootfs) !== null);
    expect(memTotal(rootfs)).toBe(64 * MiB);
    expect(runtime(['update', '--memory', String(128 * MiB), 'u-refuse']).status).toBe(0);
    await until('the container shows the new limit', () => memTotal(rootfs) === 128 * MiB);
    expect(runtime(['delete', '--force', 'u-refuse']).status).toBe(0);
    expect(existsSync(join(root, 'u-refuse'))).toBe(false);
  });
});
