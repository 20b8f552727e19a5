import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendantsOf } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError, Sandbox, SandboxError, type SandboxProcess } from '../src/index.js';
import { eventually, SYSTEM_READ, systemBuilder } from './helpers.js';

// SandboxProcess.updateLimits: the limits of a running sandbox changed.

const dir = mkdtempSync(join(tmpdir(), 'sandlock-update-limits-'));
const running: SandboxProcess[] = [];
const devNull = openSync('/dev/null', 'r+');
afterAll(async () => {
  for (const sandboxed of running) await sandboxed.kill('SIGKILL').catch(() => {});
  closeSync(devNull);
  rmSync(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

// The supervisor's worker thread loads its modules once, from the sources
// (tens of seconds on a loaded machine): before the tests, whose deadlines
// then cover only their own work.
beforeAll(() => builder().maxMemory('32M').maxProcesses(2).build().prepare(), 300_000);

/** A builder that also reads this test's directory (where the go files are). */
function builder() {
  return Sandbox.builder().fsRead(...SYSTEM_READ, dir);
}

async function spawn(sandbox: Sandbox, argv: string[], joinable = false): Promise<SandboxProcess> {
  const sandboxed = await sandbox.spawn(argv, { stdio: 'pipe', joinable });
  running.push(sandboxed);
  return sandboxed;
}

function output(sandboxed: SandboxProcess): () => string {
  let text = '';
  sandboxed.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
  });
  return () => text;
}

let files = 0;
/** A path the sandbox waits for: the program goes on once the test creates it. */
function goFile(): { path: string; go(): void } {
  const path = join(dir, `go-${files++}`);
  return { path, go: () => writeFileSync(path, '') };
}

const waitFor = (path: string) => `while [ ! -e ${path} ]; do sleep 0.05; done`;
/** 64 MiB held until the sandbox ends: dd's buffer, filled, blocked on a pipe nobody reads. */
const HOLD_64M = 'dd if=/dev/zero bs=64M count=1 2>/dev/null | sleep 3';

/** The anonymous memory of the sandbox's processes, in bytes. */
function anonymousMemory(sandboxed: SandboxProcess): number {
  let total = 0;
  for (const pid of descendantsOf(sandboxed.reaperPid)) {
    try {
      const match = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      total += Number(match?.[1] ?? 0) * 1024;
    } catch {
      // Ended meanwhile.
    }
  }
  return total;
}

/** Cpus_allowed_list of a process, or null once it has gone. */
function cpusOf(pid: number): string | null {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
  } catch {
    return null;
  }
}

/** A fork in perl, which says why it failed ($! is strerror(errno)). */
const FORK_ONCE =
  'my $p = fork; if (!defined $p) { print "fork: $!\\n"; exit 1 } if ($p == 0) { exit 0 } waitpid $p, 0; print "forked\\n"';

describe('SandboxProcess.updateLimits', () => {
  it('raises a memory limit: a program the old one would have killed survives', async () => {
    const script = (path: string) => `${waitFor(path)}; ${HOLD_64M}; echo survived`;
    // The control: under 32 MiB it is killed.
    const control = goFile();
    const killed = await spawn(builder().maxMemory('32M').build(), [
      'sh',
      '-c',
      script(control.path),
    ]);
    control.go();
    expect((await killed.wait()).killedBy?.reason).toBe('memory');

    const raised = goFile();
    const sandboxed = await spawn(builder().maxMemory('32M').build(), [
      'sh',
      '-c',
      script(raised.path),
    ]);
    const stdout = output(sandboxed);
    await sandboxed.updateLimits({ maxMemory: '128M' });
    expect(sandboxed.limits.maxMemory).toBe(128 * MiB);
    raised.go();
    const status = await sandboxed.wait();
    expect(status.killedBy).toBeNull();
    expect(stdout()).toBe('survived\n');
  });

  it('lowers a memory limit below the use: the sandbox is killed as over any limit', async () => {
    const sandboxed = await spawn(builder().maxMemory('256M').build(), [
      'sh',
      '-c',
      'dd if=/dev/zero bs=64M count=1 2>/dev/null | sleep 60',
    ]);
    expect(await eventually(() => anonymousMemory(sandboxed) > 60 * MiB, 60_000)).toBe(true);
    await sandboxed.updateLimits({ maxMemory: 32 * MiB });
    const status = await sandboxed.wait();
    expect(status.signal).toBe('SIGKILL');
    expect(status.killedBy).toMatchObject({ reason: 'memory', limit: 32 * MiB });
    expect(status.killedBy?.message).toMatch(/went over the limit of 32 MiB \(maxMemory\)$/);
  });

  it('lowers a process limit below the count: forks fail with EAGAIN, nothing is killed; raising lets them run', async () => {
    const lowered = goFile();
    const sandboxed = await spawn(builder().maxProcesses(20).build(), [
      'perl',
      '-e',
      `until (-e '${lowered.path}') { select undef, undef, undef, 0.05 } ${FORK_ONCE}`,
    ]);
    const stdout = output(sandboxed);
    await sandboxed.updateLimits({ maxProcesses: 1 });
    lowered.go();
    expect((await sandboxed.wait()).exitCode).toBe(1);
    expect(stdout()).toBe('fork: Resource temporarily unavailable\n');

    const raised = goFile();
    const other = await spawn(builder().maxProcesses(1).build(), [
      'perl',
      '-e',
      `until (-e '${raised.path}') { select undef, undef, undef, 0.05 } ${FORK_ONCE}`,
    ]);
    const otherOut = output(other);
    await other.updateLimits({ maxProcesses: 2 });
    raised.go();
    expect((await other.wait()).exitCode).toBe(0);
    expect(otherOut()).toBe('forked\n');
  });

  it.skipIf(availableParallelism() < 2)(
    'moves every process to cpuCores, and what starts afterwards, joined programs too',
    async () => {
      const sandboxed = await spawn(
        builder().build(),
        ['sh', '-c', 'while :; do sleep 0.05; done'],
        true,
      );
      expect(await eventually(() => descendantsOf(sandboxed.reaperPid).length > 1)).toBe(true);
      const before = new Set(descendantsOf(sandboxed.reaperPid));
      await sandboxed.updateLimits({ cpuCores: [1] });
      expect(sandboxed.limits.cpuCores).toEqual([1]);
      for (const pid of before) expect([null, '1']).toContain(cpusOf(pid));
      // A process forked after the change inherits it.
      let later: number[] = [];
      expect(
        await eventually(() => {
          later = descendantsOf(sandboxed.reaperPid).filter((pid) => !before.has(pid));
          return later.length > 0;
        }),
      ).toBe(true);
      for (const pid of later) expect([null, '1']).toContain(cpusOf(pid));
      const joined = await sandboxed.join({
        path: '/bin/sleep',
        argv: ['sleep', '60'],
        env: [],
        stdio: [devNull, devNull, devNull],
      });
      expect(cpusOf(joined.pid)).toBe('1');
      joined.kill('SIGKILL');
      // null: back to every CPU this process may use.
      await sandboxed.updateLimits({ cpuCores: null });
      expect(sandboxed.limits.cpuCores).toBeNull();
      expect(cpusOf(sandboxed.pid)).toBe(cpusOf(process.pid));
    },
  );

  it('checks each field as the policy does, and changes nothing when one is wrong', async () => {
    const sandboxed = await spawn(builder().maxMemory('64M').maxProcesses(10).build(), [
      'sleep',
      '60',
    ]);
    let builderError: unknown;
    try {
      systemBuilder().maxProcesses(0).build();
    } catch (error) {
      builderError = error;
    }
    expect(builderError).toBeInstanceOf(PolicyError);
    const refused = sandboxed.updateLimits({ maxMemory: '128M', maxProcesses: 0 });
    await expect(refused).rejects.toBeInstanceOf(PolicyError);
    await expect(refused).rejects.toThrow((builderError as Error).message);
    await expect(sandboxed.updateLimits({ maxMemory: 'lots' })).rejects.toThrow(
      /^invalid policy: maxMemory: /,
    );
    await expect(
      sandboxed.updateLimits({ fsRead: ['/'] } as unknown as { maxMemory: number }),
    ).rejects.toThrow(TypeError);
    // A limit it was not started with, beside one it was: neither changes.
    const cpus = cpusOf(sandboxed.pid);
    const unstarted = sandboxed.updateLimits({ maxMemory: '128M', maxCpu: 50, cpuCores: [0] });
    await expect(unstarted).rejects.toBeInstanceOf(SandboxError);
    await expect(unstarted).rejects.toThrow(
      'sandlock: cannot update limits: maxCpu: the sandbox was started with no CPU limit (nothing throttles it); a limit can be changed, not added',
    );
    await expect(sandboxed.updateLimits({ maxProcesses: null })).rejects.toThrow(
      /maxProcesses: a limit cannot be removed/,
    );
    expect(sandboxed.limits).toEqual({
      maxMemory: 64 * MiB,
      maxProcesses: 10,
      maxCpu: null,
      cpuCores: null,
    });
    expect(cpusOf(sandboxed.pid)).toBe(cpus);
    await sandboxed.kill();
    await sandboxed.wait();
    await expect(sandboxed.updateLimits({ maxMemory: '128M' })).rejects.toThrow(
      /cannot update limits: the sandbox is not running/,
    );
  });
});
