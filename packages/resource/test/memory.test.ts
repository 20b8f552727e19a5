import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendantsOf } from '@sandlock/sys';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../../../tools/test-support/index.js';
import { type LimitViolation, parseByteSize, watchResources } from '../src/index.js';
import { type SandboxProcess, systemBuilder } from './helpers.js';

const MiB = 1024 ** 2;
const PYTHON = '/usr/bin/python3';

function which(command: string): string | null {
  try {
    return (
      execFileSync('/bin/sh', ['-c', `command -v ${command}`])
        .toString()
        .trim() || null
    );
  } catch {
    return null;
  }
}

const java = which('java');
const go = which('go');
if (!java) console.warn('memory tests: java is not installed; the JVM case is skipped');
if (!go) console.warn('memory tests: go is not installed; the Go case is skipped');

const work = mkdtempSync(join(tmpdir(), 'sandlock-memory-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Outcome {
  exitCode: number | null;
  signal: string | null;
  violation: LimitViolation | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs argv in a sandbox with a memory limit watched from here. */
async function runLimited(
  argv: string[],
  maxMemory: string,
  build = systemBuilder().fsRead(work),
): Promise<Outcome> {
  const started = performance.now();
  const sandboxed: SandboxProcess = await build.build().spawn(argv);
  const watch = watchResources(sandboxed.reaperPid, { maxMemory: parseByteSize(maxMemory) })!;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  sandboxed.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  sandboxed.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  sandboxed.stdin?.end();
  const status = await sandboxed.wait();
  watch.stop();
  return {
    exitCode: status.exitCode,
    signal: status.signal,
    violation: watch.violation,
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
    ms: performance.now() - started,
  };
}

describe('memory limit on the real kernel', () => {
  it('kills a process that touches 1 GiB under 256M, long before it is done', async () => {
    const script = 'b = bytearray(1 << 30); print("finished", len(b))';
    const result = await runLimited([PYTHON, '-c', script], '256M');
    expect(result.stdout).not.toContain('finished');
    expect(result.signal).toBe('SIGKILL');
    expect(result.violation).toMatchObject({ reason: 'memory', limit: 256 * MiB });
    if (result.violation?.reason !== 'memory') throw new Error('not killed for its memory');
    const used = result.violation.used;
    expect(used).toBeGreaterThan(256 * MiB);
    // Caught within 64 MiB past the limit (measured: about 5-20 MiB).
    expect(used).toBeLessThan(320 * MiB);
    expect(result.violation.largest?.command).toBe('python3');
    expect(result.violation!.message).toMatch(/^sandlock: memory limit 256 MiB exceeded/);
    console.log(
      `1 GiB under 256M: killed at ${(used / MiB).toFixed(1)} MiB after ${result.ms.toFixed(0)} ms`,
    );
  });

  it('sums the whole tree: two processes of 160 MiB each under 256M', async () => {
    // Neither alone is over the limit: only their sum kills the sandbox,
    // long before they would have finished.
    const script = 'import time; b = bytearray(160 << 20); time.sleep(60); print("finished")';
    const result = await runLimited(
      ['/bin/sh', '-c', `${PYTHON} -c '${script}' & ${PYTHON} -c '${script}'; wait`],
      '256M',
      systemBuilder().fsRead(work).fsWrite('/dev/null'),
    );
    expect(result.violation?.reason).toBe('memory');
    expect(result.stdout).not.toContain('finished');
  });

  it('counts pages shared after fork once', async () => {
    // 150 MiB touched, then three forked children keep it mapped: the per-process
    // counters add up to 600 MiB, the proportional sizes to 150 MiB.
    const script = [
      'import os, time',
      'b = bytearray(150 << 20)',
      'kids = [os.fork() for _ in range(3)]',
      'time.sleep(1.5)',
      'print("finished") if all(kids) else os._exit(0)',
    ].join('\n');
    const result = await runLimited([PYTHON, '-c', script], '256M');
    expect(result.violation).toBeNull();
    expect(result.stdout).toContain('finished');
  });

  it('does not count the page cache of a file written (400 MiB under 256M)', async () => {
    const file = join(work, 'big');
    const result = await runLimited(
      ['/bin/sh', '-c', `head -c 400M /dev/zero > ${file} && echo finished`],
      '256M',
      systemBuilder().fsWrite(work).fsRead('/dev/zero'),
    );
    expect(result.violation).toBeNull();
    expect(result.stdout).toContain('finished');
    rmSync(file, { force: true });
  });

  it('lets node allocate 50 MB under 512M (it reserves gigabytes of address space)', async () => {
    const script =
      'const a = []; for (let i = 0; i < 50; i++) a.push(Buffer.alloc(1 << 20, 1)); console.log("finished", a.length)';
    const result = await runLimited([process.execPath, '-e', script], '512M');
    expect(result.violation).toBeNull();
    expect(result.stdout).toContain('finished 50');
    expect(result.exitCode).toBe(0);
  });

  it.skipIf(!java)('lets a JVM allocate 50 MB under 512M', async () => {
    const source = join(work, 'Alloc.java');
    writeFileSync(
      source,
      'public class Alloc { public static void main(String[] a) { byte[] b = new byte[50 << 20];' +
        ' java.util.Arrays.fill(b, (byte) 1); System.out.println("finished " + b.length); } }',
    );
    const result = await runLimited([java!, source], '512M');
    expect(result.violation).toBeNull();
    expect(result.stdout).toContain('finished');
    expect(result.exitCode).toBe(0);
  });

  it.skipIf(!go)('lets a Go program allocate 50 MB under 512M', async () => {
    const source = join(work, 'alloc.go');
    writeFileSync(
      source,
      'package main\nimport "fmt"\nfunc main() { b := make([]byte, 50<<20); for i := range b { b[i] = 1 }; fmt.Println("finished", len(b)) }\n',
    );
    const binary = join(work, 'alloc');
    execFileSync(go!, ['build', '-o', binary, source], { cwd: work });
    const result = await runLimited([binary], '512M');
    expect(result.violation).toBeNull();
    expect(result.stdout).toContain('finished');
  });

  it('calls onViolation once and stops watching', async () => {
    const seen: LimitViolation[] = [];
    const sandboxed = await systemBuilder()
      .build()
      .spawn([PYTHON, '-c', 'b = bytearray(512 << 20)']);
    const watch = watchResources(sandboxed.reaperPid, {
      maxMemory: parseByteSize('64M'),
      onViolation: (violation) => seen.push(violation),
    })!;
    await sandboxed.wait();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(watch.violation);
    expect(watch.active).toBe(false);
  });

  it('stops by itself when the sandbox ends', async () => {
    const sandboxed = await systemBuilder().build().spawn(['/bin/true']);
    const watch = watchResources(sandboxed.reaperPid, { maxMemory: parseByteSize('256M') })!;
    await sandboxed.wait();
    expect(await eventually(() => !watch.active, 30_000)).toBe(true);
    expect(watch.violation).toBeNull();
  });

  it('makes the sandbox the first choice of the OOM killer', async () => {
    const sandboxed = await systemBuilder()
      .build()
      .spawn([PYTHON, '-c', 'import os, time\nos.fork()\ntime.sleep(60)']);
    const watch = watchResources(sandboxed.reaperPid, { maxMemory: parseByteSize('256M') })!;
    const adjusted = (pid: number) =>
      readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim() === '1000';
    // Both processes, once the watch has looked at them after the fork.
    expect(
      await eventually(() => {
        const pids = descendantsOf(sandboxed.reaperPid);
        return pids.length === 2 && pids.every(adjusted);
      }, 30_000),
    ).toBe(true);
    expect(readFileSync(`/proc/${sandboxed.reaperPid}/oom_score_adj`, 'utf8').trim()).toBe('0');
    watch.stop();
    await sandboxed.kill();
    await sandboxed.wait();
  });
});
