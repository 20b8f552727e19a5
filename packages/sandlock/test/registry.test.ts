// The registry of running sandboxes (registry.ts): names, listing, kill by
// name, pruning of entries whose reaper is gone, and a directory that is not
// this user's alone refused. Each test has its own XDG_RUNTIME_DIR.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTimeOf } from '@sandlock/sys';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { running } from '../../../tools/test-support/index.js';
import { Sandbox, SandboxError, type SandboxProcess } from '../src/index.js';
import { registryDirectory } from '../src/registry.js';
import { pidNamespace } from '../src/socket-dir.js';
import { eventually, processState, SYSTEM_READ, systemBuilder } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const work = mkdtempSync(join(tmpdir(), 'sandlock-registry-'));

let runtime: string;
const started: SandboxProcess[] = [];
async function endStarted(): Promise<void> {
  for (const sandboxed of started.splice(0)) await sandboxed[Symbol.asyncDispose]();
}
beforeEach(async () => {
  await endStarted();
  runtime = mkdtempSync(join(work, 'runtime-'));
  process.env.XDG_RUNTIME_DIR = runtime;
});
afterAll(async () => {
  await endStarted();
  rmSync(work, { recursive: true, force: true });
});

async function sleeper(name?: string): Promise<SandboxProcess> {
  const sandboxed = await systemBuilder()
    .build()
    .spawn(['/bin/sleep', '300'], { stdio: 'ignore', ...(name !== undefined ? { name } : {}) });
  started.push(sandboxed);
  return sandboxed;
}

/** A registry entry as the library writes it, for a reaper that is not what it says. */
function plantEntry(
  name: string,
  reaperPid: number,
  reaperStartTime: number,
  starting = false,
): string {
  const dir = join(runtime, 'sandlock');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${name}.json`);
  const reaper = { pid: reaperPid, startTime: reaperStartTime };
  const entry = {
    version: 1,
    name,
    claim: 'planted',
    host: reaper,
    reaper: starting ? null : reaper,
    pid: starting ? null : reaperPid + 1,
    pidNamespace: pidNamespace(),
    startedAt: new Date().toISOString(),
    command: ['/bin/true'],
    policy: {},
    ports: [],
  };
  writeFileSync(file, JSON.stringify(entry), { mode: 0o600 });
  return file;
}

describe('the registry of running sandboxes', () => {
  it('lives in $XDG_RUNTIME_DIR/sandlock, made 0700', async () => {
    await sleeper();
    expect(registryDirectory()).toBe(join(runtime, 'sandlock'));
    const stat = readdirSync(runtime);
    expect(stat).toEqual(['sandlock']);
    expect(statSync(join(runtime, 'sandlock')).mode & 0o777).toBe(0o700);
  });

  it('lists two named sandboxes with their pids and commands, then each name is free again', async () => {
    const web = await sleeper('web');
    const worker = await sleeper('worker.1');
    expect(web.name).toBe('web');
    expect(worker.name).toBe('worker.1');
    const entries = await Sandbox.list();
    expect(entries.map((entry) => entry.name)).toEqual(['web', 'worker.1']);
    expect(entries[0]).toMatchObject({
      name: 'web',
      pid: web.pid,
      reaperPid: web.reaperPid,
      command: ['/bin/sleep', '300'],
      ports: [],
    });
    expect(Sandbox.fromPolicy(entries[0]!.policy).policy).toEqual(systemBuilder().build().policy);
    expect(Date.parse(entries[0]!.startedAt)).toBeLessThanOrEqual(Date.now());
    await web.kill();
    await web.wait();
    // Off the list once wait() resolves.
    expect((await Sandbox.list()).map((entry) => entry.name)).toEqual(['worker.1']);
    const again = await sleeper('web');
    expect(again.name).toBe('web');
  });

  it('names a sandbox sandbox-N, unique among the running ones', async () => {
    const first = await sleeper();
    const second = await sleeper();
    expect([first.name, second.name]).toEqual(['sandbox-1', 'sandbox-2']);
  });

  it('refuses a name a running sandbox holds, before the program runs', async () => {
    const holder = await sleeper('busy');
    const marker = join(work, `ran-${process.pid}`);
    const attempt = systemBuilder()
      .fsWrite(work)
      .build()
      .run(['/bin/touch', marker], { name: 'busy' });
    await expect(attempt).rejects.toThrow(SandboxError);
    await expect(attempt).rejects.toMatchObject({
      step: 'name',
      message: expect.stringContaining(`already called 'busy' (pid ${holder.pid})`),
    });
    expect(existsSync(marker)).toBe(false);
    expect((await Sandbox.list()).map((entry) => entry.pid)).toEqual([holder.pid]);
    await expect(systemBuilder().build().run(['/bin/true'], { name: '../x' })).rejects.toThrow(
      TypeError,
    );
  });

  it('kill by name ends every process, a grandchild in a session of its own too, and the entry', async () => {
    const script = `
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(300)
        os._exit(0)
    os._exit(0)
os.wait()
print('ready', flush=True)
time.sleep(300)
`;
    const sandboxed = await systemBuilder()
      .build()
      .spawn([PYTHON, '-c', script], { name: 'tree', stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(sandboxed);
    let out = '';
    sandboxed.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    expect(await eventually(() => out.endsWith('\n'))).toBe(true);
    const members = () =>
      readdirSync('/proc')
        .filter((name) => /^\d+$/.test(name))
        .map(Number)
        .filter((pid) => {
          try {
            const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
            const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
            return ppid === sandboxed.reaperPid && running(pid);
          } catch {
            return false;
          }
        });
    // The program and the grandchild, reparented to the reaper, in another session.
    expect(await eventually(() => members().length === 2)).toBe(true);
    const grandchild = members().find((pid) => pid !== sandboxed.pid)!;
    const session = (pid: number) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]; // field 6
    };
    expect(session(grandchild)).not.toBe(session(sandboxed.pid));
    const entry = await Sandbox.kill('tree');
    expect(entry).toMatchObject({ name: 'tree', pid: sandboxed.pid });
    // Resolved once every process has ended.
    expect(running(grandchild)).toBe(false);
    expect(running(sandboxed.pid)).toBe(false);
    expect((await sandboxed.wait()).signal).toBe('SIGKILL');
    expect(await Sandbox.list()).toEqual([]);
    expect(readdirSync(join(runtime, 'sandlock'))).toEqual(['registry.lock']);
  });

  it('kill of a name no running sandbox has: a SandboxError of step lookup', async () => {
    await expect(Sandbox.kill('nobody')).rejects.toMatchObject({ step: 'lookup' });
    await expect(Sandbox.kill('nobody', 'SIGSEGV' as NodeJS.Signals)).rejects.toThrow(TypeError);
  });

  it('prunes the entry of a reaper that is gone, and of a pid now another process', async () => {
    const live = await sleeper('live');
    const dead = spawnSync('/bin/true');
    const gone = plantEntry('gone', dead.pid, 1);
    // A pid that runs (this process), with another start time: reused.
    const reused = plantEntry('reused', process.pid, startTimeOf(process.pid)! + 1);
    // This process with its own start time is an entry that holds.
    const held = plantEntry('held', process.pid, startTimeOf(process.pid)!);
    const foreign = join(runtime, 'sandlock', 'foreign.json');
    writeFileSync(
      foreign,
      JSON.stringify({
        ...JSON.parse(readFileSync(held, 'utf8')),
        name: 'foreign',
        pidNamespace: '1',
      }),
    );
    expect((await Sandbox.list()).map((entry) => entry.name).sort()).toEqual(['held', 'live']);
    expect(existsSync(gone)).toBe(false);
    expect(existsSync(reused)).toBe(false);
    // Another pid namespace's entry cannot be judged: left alone, not listed.
    expect(existsSync(foreign)).toBe(true);
    await expect(Sandbox.kill('gone')).rejects.toMatchObject({ step: 'lookup' });
    // A stale entry does not hold its name.
    plantEntry('stale', dead.pid, 1);
    expect((await sleeper('stale')).name).toBe('stale');
    expect(live.running).toBe(true);
  });

  it('a name claimed by a host that is starting its sandbox holds it, until that host is gone', async () => {
    plantEntry('starting', process.pid, startTimeOf(process.pid)!, true);
    expect(await Sandbox.list()).toEqual([]);
    await expect(systemBuilder().build().run(['/bin/true'], { name: 'starting' })).rejects.toThrow(
      `a running sandbox is already called 'starting' (starting, host pid ${process.pid})`,
    );
    const dead = spawnSync('/bin/true');
    const claim = plantEntry('abandoned', dead.pid, 1, true);
    expect(await Sandbox.list()).toEqual([]);
    expect(existsSync(claim)).toBe(false);
  });

  it('prunes the entry of a zombie reaper: its sandbox has ended', async () => {
    const parent = spawn(
      PYTHON,
      [
        '-c',
        'import os, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(60)',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
      const zombie = Number(line.toString().trim());
      expect(await eventually(() => processState(zombie) === 'Z')).toBe(true);
      const file = plantEntry('zombie', zombie, startTimeOf(zombie)!);
      expect(await Sandbox.list()).toEqual([]);
      expect(existsSync(file)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('prunes the entry a host killed by SIGKILL left, once its reaper has killed the sandbox', async () => {
    const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
    const script = `import { Sandbox } from ${JSON.stringify(dist)};
const sandboxed = await Sandbox.builder().fsRead(...${JSON.stringify(SYSTEM_READ)}).build()
  .spawn(['/bin/sleep', '300'], { stdio: 'ignore', name: 'orphan' });
process.stdout.write(sandboxed.reaperPid + '\\n');
setInterval(() => {}, 1000);
`;
    const host = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, XDG_RUNTIME_DIR: runtime },
    });
    const [line] = (await once(host.stdout!, 'data')) as [Buffer];
    const reaper = Number(line.toString().trim());
    expect((await Sandbox.list()).map((entry) => entry.name)).toEqual(['orphan']);
    host.kill('SIGKILL');
    await once(host, 'close');
    expect(await eventually(() => !running(reaper))).toBe(true);
    expect(await Sandbox.list()).toEqual([]);
    expect(existsSync(join(runtime, 'sandlock', 'orphan.json'))).toBe(false);
  });

  it('runs a sandbox unlisted where the registry cannot be made (an XDG_RUNTIME_DIR gone)', async () => {
    process.env.XDG_RUNTIME_DIR = join(runtime, 'gone');
    const sandboxed = await sleeper('unlisted');
    expect(sandboxed.name).toBe('unlisted');
    expect(await Sandbox.list()).toEqual([]);
    await expect(Sandbox.kill('unlisted')).rejects.toMatchObject({ step: 'lookup' });
    expect(existsSync(join(runtime, 'gone'))).toBe(false);
  });

  it('refuses a directory of another user, or one its group may write', async () => {
    const dir = join(runtime, 'sandlock');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, 12345, 12345);
    await expect(Sandbox.list()).rejects.toMatchObject({
      step: 'registry',
      message: expect.stringContaining('belongs to uid 12345'),
    });
    await expect(systemBuilder().build().run(['/bin/true'])).rejects.toMatchObject({
      step: 'registry',
    });
    chownSync(dir, process.getuid!(), process.getgid!());
    chmodSync(dir, 0o770);
    await expect(Sandbox.list()).rejects.toThrow(
      /may be written by its group or others \(mode 770\)/,
    );
    await expect(Sandbox.kill('x')).rejects.toMatchObject({ step: 'registry' });
    rmSync(dir, { recursive: true });
    mkdirSync(join(runtime, 'elsewhere'), { mode: 0o700 });
    symlinkSync(join(runtime, 'elsewhere'), dir);
    await expect(Sandbox.list()).rejects.toThrow(/is not a directory/);
  });
});
