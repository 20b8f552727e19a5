import { describe, expect, it } from 'vitest';
import { Lineage, type ProcessProbe } from '../src/random-lineage.js';

/** A pid allocator and process table standing in for /proc. */
class FakeKernel {
  last: number;
  readonly tasks = new Map<number, { tgid: number; ppid: number }>();
  readonly probe: ProcessProbe;

  constructor(
    start: number,
    readonly pidMax = 32768,
  ) {
    this.last = start;
    this.probe = {
      taskInfo: (tid) => this.tasks.get(tid),
      lastAllocatedPid: () => this.last,
      pidMax: () => this.pidMax,
    };
  }

  /** alloc_pid(): the next free pid after the last, wrapping to 300 (RESERVED_PIDS, kernel/pid.c). */
  allocate(): number {
    let pid = this.last;
    do {
      pid = pid + 1 >= this.pidMax ? 300 : pid + 1;
    } while (this.tasks.has(pid));
    this.last = pid;
    return pid;
  }

  process(ppid: number): number {
    const pid = this.allocate();
    this.tasks.set(pid, { tgid: pid, ppid });
    return pid;
  }

  /** The sandbox's process `parent` forks: the lineage is told first, then the kernel makes the child. */
  fork(lineage: Lineage, parent: number, clonesParent = false): number {
    lineage.forking(parent, clonesParent);
    return this.process(clonesParent ? this.tasks.get(parent)!.ppid : parent);
  }
}

const REAPER = 1000;

function start(kernel: FakeKernel): { lineage: Lineage; program: number } {
  const program = kernel.process(REAPER);
  const lineage = new Lineage(program, kernel.probe);
  expect(lineage.entry(program)?.label).toBe('0');
  return { lineage, program };
}

describe('Lineage', () => {
  it('labels children by fork index, whatever order they are seen in', () => {
    const kernel = new FakeKernel(5000);
    const { lineage, program } = start(kernel);
    const children = [0, 1, 2, 3].map(() => {
      const child = kernel.fork(lineage, program);
      kernel.process(1); // a host process takes the next pid
      return child;
    });
    for (const index of [2, 0, 3, 1]) {
      expect(lineage.entry(children[index]!)?.label).toBe(`0.${index}`);
    }
  });

  it('grandchildren extend their parent label', () => {
    const kernel = new FakeKernel(5000);
    const { lineage, program } = start(kernel);
    kernel.fork(lineage, program);
    const second = kernel.fork(lineage, program);
    const grandchild = kernel.fork(lineage, second);
    expect(lineage.entry(grandchild)?.label).toBe('0.1.0');
    expect(lineage.entry(second)?.label).toBe('0.1');
  });

  it('works across the pid wrap-around', () => {
    const kernel = new FakeKernel(32760);
    const { lineage, program } = start(kernel);
    const children = Array.from({ length: 12 }, () => kernel.fork(lineage, program));
    expect(children.some((pid) => pid < 1000)).toBe(true);
    for (const [index, pid] of [...children.entries()].reverse()) {
      expect(lineage.entry(pid)?.label).toBe(`0.${index}`);
    }
  });

  it('a child reparented to the reaper before it was seen is matched among all forks', () => {
    const kernel = new FakeKernel(5000);
    const { lineage, program } = start(kernel);
    const child = kernel.fork(lineage, program);
    expect(lineage.entry(child)?.label).toBe('0.0');
    kernel.fork(lineage, child);
    const orphan = kernel.fork(lineage, child);
    kernel.tasks.get(orphan)!.ppid = REAPER; // its parent exited
    kernel.tasks.delete(child);
    lineage.exited(child);
    expect(lineage.entry(orphan)?.label).toBe('0.0.1');
  });

  it('CLONE_PARENT: the child is its caller parent sibling, labelled by the caller', () => {
    const kernel = new FakeKernel(5000);
    const { lineage, program } = start(kernel);
    const child = kernel.fork(lineage, program);
    kernel.fork(lineage, program);
    const sibling = kernel.fork(lineage, child, true);
    expect(kernel.tasks.get(sibling)?.ppid).toBe(program);
    expect(lineage.entry(sibling)?.label).toBe('0.0.0');
    expect(lineage.entry(child)?.label).toBe('0.0');
  });

  it('forgets an exited process; one no fork explains is a stray', () => {
    const kernel = new FakeKernel(5000);
    const { lineage, program } = start(kernel);
    const child = kernel.fork(lineage, program);
    const entry = lineage.entry(child)!;
    expect(lineage.known(child)).toBe(entry);
    lineage.exited(child);
    expect(lineage.known(child)).toBeUndefined();
    expect(lineage.entry(kernel.process(REAPER))?.label).toBe('stray0');
    expect(lineage.entry(424242)).toBeUndefined();
  });

  it('looks a thread up in /proc once, and again once its process is gone', () => {
    const kernel = new FakeKernel(5000);
    const { lineage, program } = start(kernel);
    const first = kernel.fork(lineage, program);
    const thread = kernel.allocate();
    kernel.tasks.set(thread, { tgid: first, ppid: program });
    let lookups = 0;
    const taskInfo = kernel.probe.taskInfo;
    kernel.probe.taskInfo = (tid) => {
      lookups++;
      return taskInfo(tid);
    };
    for (let i = 0; i < 5; i++) expect(lineage.ofThread(thread)?.label).toBe('0.0');
    expect(lineage.ofThread(program)?.label).toBe('0');
    expect(lookups).toBe(2); // the thread, then its process
    // The process exits; its thread's id is reused by a thread of the program's next child.
    lineage.exited(first);
    kernel.tasks.delete(first);
    const second = kernel.fork(lineage, program);
    kernel.tasks.set(thread, { tgid: second, ppid: program });
    expect(lineage.ofThread(thread)?.label).toBe('0.1');
    expect(lookups).toBe(4);
  });
});
