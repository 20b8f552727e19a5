import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SYSTEM, sandlock } from './helpers.js';

const PYTHON = '/usr/bin/python3';
const START = '2000-01-01T00:00:00Z';
const START_SECONDS = Date.UTC(2000, 0, 1) / 1000;

// The issue's own check: randomness from getrandom (os.urandom, random's seed,
// uuid4) and the wall clock, in one line.
const LINE =
  'import os,random,time,uuid; print(os.urandom(8).hex(), random.random(), uuid.uuid4(), int(time.time())//100)';

/** A program that forks four children reading randomness at once, each tagged with its index. */
const PARALLEL = [
  'import os, time',
  'for i in range(4):',
  '    if os.fork() == 0:',
  '        time.sleep((4 - i) * 0.02)',
  // One write(2) per line: lines of processes running at once never interleave.
  "        os.write(1, f\"{i} {os.urandom(8).hex()} {open('/dev/urandom', 'rb').read(8).hex()}\\n\".encode())",
  '        os._exit(0)',
  'for _ in range(4): os.wait()',
  'print("parent", os.urandom(8).hex())',
].join('\n');

function run(flags: readonly string[], command: readonly string[]) {
  return sandlock(['run', ...SYSTEM, ...flags, '--', ...command]);
}

describe('sandlock run --random-seed and --time-start', () => {
  it('make two runs of the same program print the same line', () => {
    const flags = ['--random-seed', '42', '--time-start', START];
    const first = run(flags, [PYTHON, '-c', LINE]);
    const second = run(flags, [PYTHON, '-c', LINE]);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    const fields = first.stdout.trim().split(' ');
    expect(fields).toHaveLength(4);
    expect(Number(fields[3])).toBe(Math.floor(START_SECONDS / 100));
    // Another seed, other bytes.
    const other = run(['--random-seed', '43', '--time-start', START], [PYTHON, '-c', LINE]);
    expect(other.stdout.split(' ')[0]).not.toBe(fields[0]);
  });

  it('--random-seed: parallel children get streams by their place in the tree, not by timing', () => {
    const first = run(['--random-seed', '9'], [PYTHON, '-c', PARALLEL]);
    expect(first.stderr).toBe('');
    const lines = first.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    // The children finish in reverse order of their fork; their lines do not depend on it.
    const again = run(['--random-seed', '9'], [PYTHON, '-c', PARALLEL.replace('(4 - i)', 'i')]);
    expect(again.stdout.trim().split('\n').sort()).toEqual([...lines].sort());
    const values = lines.flatMap((line) => line.split(' ').slice(1));
    expect(new Set(values).size).toBe(values.length);
  });

  it('--random-seed: /proc/sys/kernel/random/uuid and boot_id are seeded', () => {
    const script =
      'cat /proc/sys/kernel/random/uuid /proc/sys/kernel/random/uuid /proc/sys/kernel/random/boot_id; (cat /proc/sys/kernel/random/uuid /proc/sys/kernel/random/boot_id)';
    const flags = ['--random-seed', '11', '-r', '/proc'];
    const first = run(flags, ['/bin/sh', '-c', script]);
    expect(first.stderr).toBe('');
    const [one, two, boot, childUuid, childBoot] = first.stdout.trim().split('\n');
    const v4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const uuid of [one, two, boot, childUuid]) expect(uuid).toMatch(v4);
    // A new UUID at each open, one boot id for every process of the sandbox.
    expect(new Set([one, two, childUuid]).size).toBe(3);
    expect(childBoot).toBe(boot);
    expect(boot).not.toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(run(flags, ['/bin/sh', '-c', script]).stdout).toBe(first.stdout);
    const other = run(['--random-seed', '12', '-r', '/proc'], ['/bin/sh', '-c', script]);
    expect(other.stdout.split('\n')[0]).not.toBe(one);
  });

  it('--random-seed: /dev/urandom gives the same bytes beyond 1 MiB', () => {
    const command = ['/bin/sh', '-c', 'head -c 3000000 /dev/urandom | sha256sum'];
    const first = run(['--random-seed', '5'], command);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/^[0-9a-f]{64} {2}-\n$/);
    expect(run(['--random-seed', '5'], command).stdout).toBe(first.stdout);
    expect(run(['--random-seed', '6'], command).stdout).not.toBe(first.stdout);
  });

  it('--time-start: date, Python and Node start at that instant; sleeps still take their time', () => {
    const started = Date.now();
    const result = run(
      ['--time-start', START],
      [
        '/bin/sh',
        '-c',
        `date -u +%Y-%m-%d; sleep 1; ${PYTHON} -c 'import time; t = time.time(); time.sleep(0.2); print(int(t), round(time.time() - t, 1))'; ${process.execPath} -e 'console.log(new Date().getUTCFullYear())'`,
      ],
    );
    const elapsed = Date.now() - started;
    expect(result.stderr).toBe('');
    const [day, python, node] = result.stdout.trim().split('\n');
    expect(day).toBe('2000-01-01');
    const [seconds, slept] = python!.split(' ').map(Number);
    expect(seconds! - START_SECONDS).toBeGreaterThanOrEqual(1);
    // Upper bounds only catch a clock that jumped: a loaded machine is slow, never fast.
    expect(seconds! - START_SECONDS).toBeLessThan(600);
    expect(slept).toBeGreaterThanOrEqual(0.2);
    expect(slept).toBeLessThan(600);
    expect(node).toBe('2000');
    expect(elapsed).toBeGreaterThanOrEqual(1000);
  });

  it('refuses a seed or a start time it cannot read, naming the flag', () => {
    const seed = sandlock(['run', ...SYSTEM, '--random-seed', '-1', '--', 'true']);
    expect(seed.status).toBe(125);
    expect(seed.stderr).toBe(
      "sandlock: invalid policy: --random-seed: expected a whole number from 0 to 2^64-1, got '-1'\n",
    );
    const time = sandlock(['run', ...SYSTEM, '--time-start', 'yesterday', '--', 'true']);
    expect(time.status).toBe(125);
    expect(time.stderr).toBe(
      "sandlock: invalid policy: --time-start: expected an ISO 8601 date-time with a time zone (2000-01-01T00:00:00Z), from 1970 to 9999, got 'yesterday'\n",
    );
  });
});
