import { CLONE_THREAD, SIGCHLD as SIGNAL_CHILD, syscallNumber } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { ProcessCounter, type ProcessProbe } from '../src/index.js';

const CLONE = syscallNumber('clone');
const FORK = syscallNumber('fork');
const SIGCHLD = BigInt(SIGNAL_CHILD);

/**
 * A fake kernel: processes (one thread each unless given more), parent links
 * per thread, zombies and reaping, and which thread is inside which call.
 */
class FakeKernel implements ProcessProbe {
  private nextPid = 100;
  /** pid → its threads → the children each thread forked. */
  readonly procs = new Map<number, Map<number, number[]>>();
  readonly parent = new Map<number, { pid: number; tid: number }>();
  readonly inCall = new Map<number, { nr: number; arg0: bigint } | 'unreadable'>();
  private readonly handles = new Map<number, number>();
  private nextHandle = 1;
  opened = 0;

  constructor(readonly reaper = 1) {
    this.procs.set(reaper, new Map([[reaper, []]]));
  }

  spawn(parentPid: number, parentTid = parentPid): number {
    const pid = this.nextPid++;
    this.procs.set(pid, new Map([[pid, []]]));
    this.procs.get(parentPid)!.get(parentTid)!.push(pid);
    this.parent.set(pid, { pid: parentPid, tid: parentTid });
    return pid;
  }

  thread(pid: number): number {
    const tid = this.nextPid++;
    this.procs.get(pid)!.set(tid, []);
    return tid;
  }

  /** The process exits and is reaped at once; its children go to the reaper. */
  reap(pid: number): void {
    const threads = this.procs.get(pid)!;
    for (const children of threads.values()) {
      for (const child of children) {
        this.procs.get(this.reaper)!.get(this.reaper)!.push(child);
        this.parent.set(child, { pid: this.reaper, tid: this.reaper });
      }
    }
    this.procs.delete(pid);
    const { pid: ppid, tid } = this.parent.get(pid)!;
    const siblings = this.procs.get(ppid)?.get(tid);
    if (siblings) siblings.splice(siblings.indexOf(pid), 1);
    for (const t of threads.keys()) this.inCall.delete(t);
  }

  threads(pid: number): number[] {
    return [...(this.procs.get(pid)?.keys() ?? [])];
  }
  /** Called before a children list is read (to make things happen mid-walk). */
  beforeRead: ((tid: number) => void) | null = null;

  children(_pid: number, tid: number): number[] {
    this.beforeRead?.(tid);
    for (const threads of this.procs.values()) {
      const list = threads.get(tid);
      if (list) return [...list];
    }
    return [];
  }
  inSyscall(tid: number, nr: number, arg0: bigint): boolean | null {
    const state = this.inCall.get(tid);
    if (state === 'unreadable') return null;
    return state !== undefined && state.nr === nr && state.arg0 === arg0;
  }
  open(pid: number): number | null {
    if (!this.procs.has(pid)) return null;
    this.opened += 1;
    const handle = this.nextHandle++;
    this.handles.set(handle, pid);
    return handle;
  }
  reaped(handle: number): boolean {
    return !this.procs.has(this.handles.get(handle)!);
  }
  close(handle: number): void {
    this.handles.delete(handle);
  }
}

type Answer = { kind: 'continue' } | { kind: 'errno'; errno: number };

/** The counter with the answers the process-limit module gives, per syscall name. */
function processLimitModule(
  config: { reaperPid: number; maxProcesses: number; zygoteParent?: number },
  kernel: FakeKernel,
) {
  const counter = new ProcessCounter(
    config.reaperPid,
    config.maxProcesses,
    kernel,
    undefined,
    config.zygoteParent ?? null,
  );
  const handle = (call: { pid: number; data: { nr: number; args: bigint[] } }): Answer =>
    counter.decide(call.pid, call.data.nr, call.data.args[0]!) === 'deny'
      ? { kind: 'errno', errno: 11 }
      : { kind: 'continue' };
  const handlers: Record<string, typeof handle> = { clone: handle, fork: handle, vfork: handle };
  return { counter, handlers };
}

/** Runs a fork the way the kernel would after the supervisor answered continue. */
function forkThrough(
  kernel: FakeKernel,
  module: ReturnType<typeof processLimitModule>,
  pid: number,
  tid = pid,
): number | 'EAGAIN' {
  const answer = module.handlers.fork!({ pid: tid, data: { nr: FORK, args: [0n] } });
  if (answer.kind === 'errno') return 'EAGAIN';
  return kernel.spawn(pid, tid);
}

describe('ProcessCounter', () => {
  it('counts the program and refuses the fork over the cap with EAGAIN', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 3 }, kernel);
    expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
    expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
    expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
    expect(module.counter.denied).toBe(1);
    expect(module.counter.reconcile()).toEqual({ live: 3, pending: 0 });
  });

  it('with a cap of 1 forbids every fork', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 1 }, kernel);
    expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
  });

  it('lets threads through without counting them', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 1 }, kernel);
    const flags = BigInt(0x3d0f00 | CLONE_THREAD);
    for (let i = 0; i < 100; i++) {
      const answer = module.handlers.clone!({ pid: program, data: { nr: CLONE, args: [flags] } });
      expect(answer).toEqual({ kind: 'continue' });
    }
  });

  it('credits a process once its pidfd says it was reaped, not on wait calls', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 2 }, kernel);
    const child = forkThrough(kernel, module, program) as number;
    expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
    kernel.reap(child);
    expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
  });

  it('still counts a zombie (it holds a pid until reaped)', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 2 }, kernel);
    forkThrough(kernel, module, program); // the child exits but is never waited for
    expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
  });

  it('counts raw fork, vfork and clone without CLONE_THREAD alike', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 3 }, kernel);
    const { handlers } = module;
    const ask = (name: string, nr: number, arg0: bigint) =>
      handlers[name]!({ pid: program, data: { nr, args: [arg0] } });
    expect(ask('clone', CLONE, SIGCHLD)).toEqual({ kind: 'continue' });
    kernel.spawn(program);
    expect(ask('vfork', syscallNumber('vfork'), 0n)).toEqual({ kind: 'continue' });
    kernel.spawn(program);
    expect(ask('fork', FORK, 0n)).toEqual({ kind: 'errno', errno: 11 });
  });

  it('never lets two forks in flight take the last slot', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const worker = kernel.thread(program);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 2 }, kernel);
    // Two threads ask before either fork has run in the kernel.
    const first = module.handlers.fork!({ pid: program, data: { nr: FORK, args: [0n] } });
    kernel.inCall.set(program, { nr: FORK, arg0: 0n });
    const second = module.handlers.fork!({ pid: worker, data: { nr: FORK, args: [0n] } });
    expect(first).toEqual({ kind: 'continue' });
    expect(second).toEqual({ kind: 'errno', errno: 11 });
  });

  it('frees the reservation of a fork that failed in the kernel', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const worker = kernel.thread(program);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 2 }, kernel);
    // Allowed, then the kernel refused it (ENOMEM): no child, the thread moved on.
    expect(module.handlers.fork!({ pid: program, data: { nr: FORK, args: [0n] } }).kind).toBe(
      'continue',
    );
    expect(forkThrough(kernel, module, program, worker)).toBeTypeOf('number');
  });

  it('keeps the reservation of a fork still in the kernel, and ends it when the child shows', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const worker = kernel.thread(program);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 3 }, kernel);
    module.handlers.fork!({ pid: program, data: { nr: FORK, args: [0n] } });
    kernel.inCall.set(program, { nr: FORK, arg0: 0n });
    expect(module.counter.reconcile()).toEqual({ live: 1, pending: 1 });
    // The child exists; the parent has not returned from fork yet.
    kernel.spawn(program);
    expect(module.counter.reconcile()).toEqual({ live: 2, pending: 0 });
    expect(forkThrough(kernel, module, program, worker)).toBeTypeOf('number');
    expect(forkThrough(kernel, module, program, worker)).toBe('EAGAIN');
  });

  it('keeps a reservation it cannot check (non-dumpable caller) until the thread moves on', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 2 }, kernel);
    module.handlers.fork!({ pid: program, data: { nr: FORK, args: [0n] } });
    kernel.inCall.set(program, 'unreadable');
    expect(module.counter.reconcile()).toEqual({ live: 1, pending: 1 });
    // Its next fork proves the previous one returned (and failed: no child).
    expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
  });

  it('finds children whose parent exited (reparented to the reaper)', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 3 }, kernel);
    const middle = forkThrough(kernel, module, program) as number;
    forkThrough(kernel, module, middle);
    kernel.reap(middle); // the grandchild now hangs below the reaper
    expect(module.counter.reconcile()).toEqual({ live: 2, pending: 0 });
    expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
    expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
  });

  it('finds children handed to the reaper while the walk runs', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const counter = new ProcessCounter(1, 4, kernel);
    const middle = kernel.spawn(program);
    const grandchild = kernel.spawn(middle);
    // `middle` exits (and is reaped) just before its list is read: its child
    // moves to the reaper, whose list the walk has read already.
    kernel.beforeRead = (tid) => {
      if (tid === middle) {
        kernel.beforeRead = null;
        kernel.reap(middle);
      }
    };
    // The program, the grandchild, and `middle` until the next look credits it.
    expect(counter.reconcile()).toEqual({ live: 3, pending: 0 });
    expect(counter.reconcile()).toEqual({ live: 2, pending: 0 });
    expect(kernel.children(1, 1)).toContain(grandchild);
  });

  it('fork bomb: never more than the cap, whatever the order', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 10 }, kernel);
    const alive = [program];
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let step = 0; step < 2000; step++) {
      const pick = alive[Math.floor(random() * alive.length)]!;
      if (random() < 0.3 && pick !== program) {
        kernel.reap(pick);
        alive.splice(alive.indexOf(pick), 1);
        continue;
      }
      const child = forkThrough(kernel, module, pick);
      if (child !== 'EAGAIN') alive.push(child);
      expect(alive.length).toBeLessThanOrEqual(10);
    }
    expect(module.counter.denied).toBeGreaterThan(0);
  });

  it('below the cap, opens no pidfd and walks no tree', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const module = processLimitModule({ reaperPid: 1, maxProcesses: 1000 }, kernel);
    for (let i = 0; i < 50; i++) forkThrough(kernel, module, program);
    expect(kernel.opened).toBe(1); // the first call's walk found the program
  });

  describe('with a zygote (a joinable sandbox)', () => {
    it('counts neither the zygote nor its fork; what it forks counts', () => {
      const kernel = new FakeKernel();
      const program = kernel.spawn(1);
      const module = processLimitModule(
        { reaperPid: 1, maxProcesses: 3, zygoteParent: program },
        kernel,
      );
      // The stub's fork of the zygote, before the program runs: allowed even at the cap.
      const zygote = forkThrough(kernel, module, program) as number;
      expect(zygote).toBeTypeOf('number');
      expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
      const joined = forkThrough(kernel, module, zygote);
      expect(joined).toBeTypeOf('number');
      expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
      expect(forkThrough(kernel, module, joined as number)).toBe('EAGAIN');
      expect(module.counter.reconcile()).toEqual({ live: 3, pending: 0 });
    });

    it('with a cap of 1 still starts the zygote, and the program forks nothing', () => {
      const kernel = new FakeKernel();
      const program = kernel.spawn(1);
      const module = processLimitModule(
        { reaperPid: 1, maxProcesses: 1, zygoteParent: program },
        kernel,
      );
      const zygote = forkThrough(kernel, module, program) as number;
      expect(zygote).toBeTypeOf('number');
      expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
      expect(forkThrough(kernel, module, zygote)).toBe('EAGAIN');
    });

    it('counts a process that took the pid of a reaped zygote', () => {
      const kernel = new FakeKernel();
      const program = kernel.spawn(1);
      const module = processLimitModule(
        { reaperPid: 1, maxProcesses: 2, zygoteParent: program },
        kernel,
      );
      const zygote = forkThrough(kernel, module, program) as number;
      expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
      kernel.reap(zygote);
      // The workload's own processes fill the cap again, the zygote's pid
      // among them: nothing is exempt any more.
      const kernelNext = kernel as unknown as { nextPid: number };
      kernelNext.nextPid = zygote;
      const reused = kernel.spawn(program);
      expect(reused).toBe(zygote);
      expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
    });

    it('exempts nothing when the first fork of the program made no child', () => {
      const kernel = new FakeKernel();
      const program = kernel.spawn(1);
      const module = processLimitModule(
        { reaperPid: 1, maxProcesses: 2, zygoteParent: program },
        kernel,
      );
      // The stub's fork was let through but failed in the kernel: no zygote.
      expect(module.handlers.fork!({ pid: program, data: { nr: FORK, args: [0n] } }).kind).toBe(
        'continue',
      );
      expect(forkThrough(kernel, module, program)).toBeTypeOf('number');
      expect(forkThrough(kernel, module, program)).toBe('EAGAIN');
    });
  });

  it('rejects a cap below 1', () => {
    expect(() => new ProcessCounter(1, 0)).toThrow(/at least 1/);
  });

  it('takes a lowered cap at the next fork: refused below the count, none killed; raised, allowed', () => {
    const kernel = new FakeKernel();
    const program = kernel.spawn(1);
    const counter = new ProcessCounter(1, 10, kernel);
    const children = [kernel.spawn(program), kernel.spawn(program)];
    expect(counter.reconcile()).toEqual({ live: 3, pending: 0 });
    counter.max = 2;
    expect(counter.decide(program, CLONE, BigInt(SIGNAL_CHILD))).toBe('deny');
    for (const child of children) expect(kernel.children(program, program)).toContain(child);
    counter.max = 4;
    expect(counter.decide(program, CLONE, BigInt(SIGNAL_CHILD))).toBe('allow');
    expect(() => {
      counter.max = 0;
    }).toThrow(/at least 1/);
    expect(counter.max).toBe(4);
  });
});
