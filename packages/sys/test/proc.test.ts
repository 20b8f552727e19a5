import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withoutDescriptors } from '../../../tools/test-support/descriptors.js';
import {
  childrenOfThread,
  descendantsOf,
  ProcReadError,
  parentOf,
  processOf,
  readProc,
  threadsOf,
  walkTree,
} from '../src/index.js';

/** A pid that was just reaped (unlikely to be reused within the test). */
async function gonePid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

function codeOf(read: () => unknown): string | null {
  try {
    read();
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(ProcReadError);
    return (error as ProcReadError).code;
  }
}

describe('/proc readers tell "gone" from "could not read"', () => {
  it('read a live process, and null / [] for one that is gone', async () => {
    expect(readProc(`/proc/${process.pid}/status`)).toMatch(/^Name:/);
    expect(parentOf(process.pid)).toBe(process.ppid);
    const gone = await gonePid();
    expect(readProc(`/proc/${gone}/status`)).toBeNull();
    expect(parentOf(gone)).toBeNull();
    expect(processOf(gone)).toBeNull();
    expect(threadsOf(gone)).toEqual([]);
    expect(childrenOfThread(gone, gone)).toEqual([]);
    expect(walkTree(gone)).toBeNull();
    expect(descendantsOf(gone)).toEqual([]);
  });

  it('throw ProcReadError (EMFILE) for a live process when this process has no descriptor left', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const pid = child.pid!;
      const codes = await withoutDescriptors(() => [
        codeOf(() => readProc(`/proc/${pid}/status`)),
        codeOf(() => parentOf(pid)),
        codeOf(() => processOf(pid)),
        codeOf(() => threadsOf(pid)),
        codeOf(() => childrenOfThread(process.pid, process.pid)),
        codeOf(() => walkTree(process.pid, { status: true })),
        codeOf(() => descendantsOf(process.pid)),
        codeOf(() => descendantsOf(process.pid, 'scan')),
      ]);
      expect(codes).toEqual(Array(8).fill('EMFILE'));
      // Afterwards the same reads work again.
      expect(descendantsOf(process.pid)).toContain(pid);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('reads a file longer than its 64 KiB buffer to the end', async () => {
    // 400 mappings that cannot merge (alternate protections): ~450 KiB of smaps.
    const child = spawn(
      '/usr/bin/python3',
      [
        '-c',
        'import mmap, sys, time\n' +
          'm = [mmap.mmap(-1, 4096, prot=mmap.PROT_READ | (mmap.PROT_WRITE if i % 2 else 0)) for i in range(400)]\n' +
          'print("ready", flush=True)\ntime.sleep(60)',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise((resolve) => child.stdout!.once('data', resolve));
      const path = `/proc/${child.pid}/smaps`;
      const text = readProc(path)!;
      expect(text.length).toBeGreaterThan(256 * 1024);
      // Counters such as Pss change with what other processes map; the
      // mappings and the shape of each entry do not while the child sleeps.
      const shape = (smaps: string) =>
        smaps
          .split('\n')
          .map((line) => (/^[0-9a-f]+-[0-9a-f]+ /.test(line) ? line : line.split(':')[0]));
      expect(shape(text)).toEqual(shape(readFileSync(path, 'latin1')));
      expect(text.endsWith('\n')).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
