// The delegation socket's directory (socket-dir.ts) is gone once its host
// process ends: by exiting, by SIGINT or SIGTERM (which still end the host
// as before), and, after a SIGKILL, once the next host starts. Each host is
// a child Node process running the built package, with its own TMPDIR.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { removeAbandoned } from '../src/socket-dir.js';
import { SYSTEM_READ } from './helpers.js';

const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sandlock-socket-dir-'));
// The registry of running sandboxes, kept out of the hosts' TMPDIR (its default place).
const runtime = mkdtempSync(join(work, 'runtime-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fresh directory to be a host's TMPDIR. */
function freshTmp(): string {
  return mkdtempSync(join(work, 'tmp-'));
}

/**
 * A host that starts a supervised sandbox (`sleep 60` under a process limit),
 * prints "started", and waits. `handler`: code it runs first (its own signal
 * handling).
 */
async function startHost(tmp: string, handler = ''): Promise<ChildProcess> {
  const script = join(work, `host-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    script,
    `import { Sandbox } from ${JSON.stringify(dist)};
${handler}
const sandbox = Sandbox.builder().fsRead(...${JSON.stringify(SYSTEM_READ)}).maxProcesses(4).build();
await sandbox.spawn(['/bin/sleep', '60'], { stdio: ['ignore', 'ignore', 'inherit'] });
process.stdout.write('started\\n');
setInterval(() => {}, 1000);
`,
  );
  const host = spawn(process.execPath, [script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: runtime },
  });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    host.stdout!.on('data', (chunk: Buffer) => {
      seen += chunk;
      if (seen.includes('started\n')) resolve();
    });
    host.once('exit', (code, signal) => reject(new Error(`host ended first: ${code ?? signal}`)));
  });
  return host;
}

function ended(
  host: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (host.exitCode !== null || host.signalCode !== null) {
    return Promise.resolve({ code: host.exitCode, signal: host.signalCode });
  }
  return new Promise((resolve) => host.once('exit', (code, signal) => resolve({ code, signal })));
}

/** The socket directories in `tmp`. */
function socketDirs(tmp: string): string[] {
  return readdirSync(tmp).filter((name) => existsSync(join(tmp, name, 'supervisor.sock')));
}

describe('the delegation socket directory', () => {
  it('is made by a host of a supervised sandbox and named after it', async () => {
    const tmp = freshTmp();
    const host = await startHost(tmp);
    const [dir] = socketDirs(tmp);
    expect(dir).toMatch(new RegExp(`^sandlock-\\d+-${host.pid}-\\d+-\\w{6}$`));
    host.kill('SIGKILL');
    await ended(host);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'is removed on %s, and the host still dies of it',
    async (signal) => {
      const tmp = freshTmp();
      const host = await startHost(tmp);
      expect(socketDirs(tmp)).toHaveLength(1);
      host.kill(signal);
      expect(await ended(host)).toEqual({ code: null, signal });
      expect(readdirSync(tmp)).toEqual([]);
    },
  );

  it('stays while a host that handles the signal runs on, and goes when it exits', async () => {
    const tmp = freshTmp();
    const host = await startHost(
      tmp,
      `process.on('SIGTERM', () => { process.stdout.write('handled\\n'); setTimeout(() => process.exit(3), 100); });`,
    );
    let out = '';
    host.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    host.kill('SIGTERM');
    expect(await ended(host)).toEqual({ code: 3, signal: null });
    expect(out).toBe('handled\n');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('is removed when the host exits', async () => {
    const tmp = freshTmp();
    const script = join(work, 'exits.mjs');
    writeFileSync(
      script,
      `import { Sandbox } from ${JSON.stringify(dist)};
const sandbox = Sandbox.builder().fsRead(...${JSON.stringify(SYSTEM_READ)}).maxProcesses(4).build();
const result = await sandbox.run(['/bin/true']);
process.stdout.write(String(result.exitCode));
`,
    );
    const host = spawn(process.execPath, [script], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, TMPDIR: tmp, XDG_RUNTIME_DIR: runtime },
    });
    let out = '';
    host.stdout!.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    expect(await ended(host)).toEqual({ code: 0, signal: null });
    expect(out).toBe('0');
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("after a SIGKILL, goes when the next host starts; a live host's is kept", async () => {
    const tmp = freshTmp();
    const killed = await startHost(tmp);
    const [killedDir] = socketDirs(tmp);
    const live = await startHost(tmp);
    expect(socketDirs(tmp)).toHaveLength(2);
    const [liveDir] = socketDirs(tmp).filter((name) => name !== killedDir);
    killed.kill('SIGKILL');
    await ended(killed);
    expect(socketDirs(tmp)).toEqual(expect.arrayContaining([killedDir, liveDir]));

    const next = await startHost(tmp);
    const left = socketDirs(tmp);
    expect(left).not.toContain(killedDir);
    expect(left).toContain(liveDir);
    expect(left).toHaveLength(2);
    for (const host of [live, next]) {
      host.kill('SIGTERM');
      await ended(host);
    }
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("never removes another user's, another pid namespace's, or a live process's directory", () => {
    const tmp = freshTmp();
    const namespace = /\d+/.exec(readlinkSync('/proc/self/ns/pid'))![0];
    // Above the largest pid_max (2^22, PID_MAX_LIMIT in include/linux/threads.h): no process has it.
    const gone = 4_194_305;
    const make = (name: string, uid?: number) => {
      mkdirSync(join(tmp, name));
      writeFileSync(join(tmp, name, 'supervisor.sock'), '');
      if (uid !== undefined) chownSync(join(tmp, name), uid, uid);
      return name;
    };
    const abandoned = make(`sandlock-${namespace}-${gone}-1-aaaaaa`);
    const reused = make(`sandlock-${namespace}-${process.pid}-1-bbbbbb`);
    const others = [
      // Another user's (this test runs as root, which may chown).
      make(`sandlock-${namespace}-${gone}-1-cccccc`, process.getuid!() + 1),
      make(`sandlock-${Number(namespace) + 1}-${gone}-1-dddddd`),
      make(`sandlock-${namespace}-1-${startOf(1)}-eeeeee`),
      make('sandlock-ffffff'),
    ];
    removeAbandoned(tmp);
    expect(readdirSync(tmp).sort()).toEqual(others.sort());
    expect(readdirSync(tmp)).not.toContain(abandoned);
    expect(readdirSync(tmp)).not.toContain(reused);
  });
});

/** Field 22 of /proc/PID/stat. */
function startOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}
