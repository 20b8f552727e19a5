import { Supervisor } from '@sandlock/dispatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RANDOM_MODULE, RANDOM_SYSCALLS } from '../src/index.js';
import { output, PYTHON, run } from './helpers.js';

let supervisor: Supervisor;
beforeAll(async () => {
  supervisor = await Supervisor.start({ modules: [{ module: RANDOM_MODULE }] });
});
afterAll(() => supervisor?.close());

const seeded = (seed: bigint) => ({ policy: { randomSeed: seed } });
const py = (code: string) => [PYTHON, '-c', code];

describe('module', () => {
  it('is on only with randomSeed', () => {
    expect(supervisor.notifiedSyscalls({ policy: {} })).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: { randomSeed: null } })).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: { randomSeed: 0n } })).toEqual(
      [...RANDOM_SYSCALLS].sort(),
    );
  });
});

describe('getrandom', () => {
  const urandom16 = py('import os; print(os.urandom(16).hex())');

  it('same seed, same bytes; another seed, other bytes', async () => {
    const a = await output(supervisor, urandom16, seeded(42n));
    const b = await output(supervisor, urandom16, seeded(42n));
    const c = await output(supervisor, urandom16, seeded(43n));
    expect(a).toMatch(/^[0-9a-f]{32}\n$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });
});

describe('/dev/urandom', () => {
  it('head -c 4000000 | sha256sum is reproducible', async () => {
    const argv = ['/bin/sh', '-c', 'head -c 4000000 /dev/urandom | sha256sum'];
    const a = await output(supervisor, argv, seeded(7n));
    const b = await output(supervisor, argv, seeded(7n));
    const c = await output(supervisor, argv, seeded(8n));
    expect(a).toMatch(/^[0-9a-f]{64} {2}-\n$/);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('od /dev/random', async () => {
    const argv = ['/usr/bin/od', '-An', '-N16', '-tx1', '/dev/random'];
    const a = await output(supervisor, argv, seeded(7n));
    expect(await output(supervisor, argv, seeded(7n))).toBe(a);
    expect(await output(supervisor, argv, seeded(9n))).not.toBe(a);
  });
});

/** Lines `tag hex` → a map from tag to hex. */
function byTag(text: string): Map<string, string> {
  return new Map(text.trim().split('\n').map((line) => line.split(' ') as [string, string]));
}

describe('streams follow the process tree', () => {
  // Four children read at once; each sleeps for a time that differs between
  // runs (from its pid and the clock), so they finish in another order.
  const forks = py(`
import os, sys, time
children = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        time.sleep(((os.getpid() * 7919 + time.monotonic_ns()) % 50) / 1000)
        os.write(1, f"child{i} {os.urandom(8).hex()}\\n".encode())
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("parent", os.urandom(8).hex())
`);

  it('four children reading in parallel print the same lines in two runs', async () => {
    const first = await output(supervisor, forks, seeded(5n));
    const second = await output(supervisor, forks, seeded(5n));
    const a = byTag(first);
    const b = byTag(second);
    expect([...a.keys()].sort()).toEqual(['child0', 'child1', 'child2', 'child3', 'parent']);
    for (const [tag, hex] of a) expect(b.get(tag), tag).toBe(hex);
    expect(first.trim().split('\n').sort()).toEqual(second.trim().split('\n').sort());
    // The parent's and every child's streams differ.
    expect(new Set(a.values()).size).toBe(5);
    const other = byTag(await output(supervisor, forks, seeded(6n)));
    for (const [tag, hex] of a) expect(other.get(tag), tag).not.toBe(hex);
  });

  it('grandchildren, and a child whose parent exited first, keep their streams', async () => {
    const program = py(`
import os, time
r, w = os.pipe()
if os.fork() == 0:
    # The child forks a grandchild and exits at once: the grandchild is
    # reparented before it reads.
    if os.fork() == 0:
        os.close(w)
        os.read(r, 1)
        os.write(1, f"orphan {os.urandom(8).hex()}\\n".encode())
        os._exit(0)
    os._exit(0)
os.close(r)
os.wait()
time.sleep(0.05)
if os.fork() == 0:
    if os.fork() == 0:
        os.write(1, f"grandchild {os.urandom(8).hex()}\\n".encode())
        os._exit(0)
    os.wait()
    os._exit(0)
os.wait()
os.close(w)
time.sleep(0.2)
`);
    const a = byTag(await output(supervisor, program, seeded(11n)));
    const b = byTag(await output(supervisor, program, seeded(11n)));
    expect([...a.keys()].sort()).toEqual(['grandchild', 'orphan']);
    expect(b).toEqual(a);
    expect(a.get('orphan')).not.toBe(a.get('grandchild'));
  });

  it('threads read their process stream', async () => {
    const inThread = py(`
import os, threading
t = threading.Thread(target=lambda: print(os.urandom(8).hex()))
t.start(); t.join()
`);
    const inMain = py('import os, threading; print(os.urandom(8).hex())');
    const thread = await output(supervisor, inThread, seeded(3n));
    expect(thread).toMatch(/^[0-9a-f]{16}\n$/);
    expect(await output(supervisor, inMain, seeded(3n))).toBe(thread);
  });
});

describe('Python', () => {
  it('random.random() and uuid.uuid4() are reproducible', async () => {
    const argv = py('import random, uuid; print(random.random(), uuid.uuid4())');
    const a = await output(supervisor, argv, seeded(99n));
    expect(a).toMatch(/^0\.\d+ [0-9a-f-]{36}\n$/);
    expect(await output(supervisor, argv, seeded(99n))).toBe(a);
    expect(await output(supervisor, argv, seeded(100n))).not.toBe(a);
  });
});
