// Retarget answers against the real kernel: the thread runs another call
// (fchdir, execveat of an injected descriptor) with its memory untouched, its
// registers as they were but for the result, and no descriptor left behind.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DispatchError, Supervisor } from '../src/index.js';
import { PYTHON, supervise, testModule } from './support/sandbox.js';

const hasPython = spawnSync(PYTHON, ['-c', 'pass']).status === 0;
if (!hasPython) console.warn(`skipping the retarget tests: ${PYTHON} is not installed`);
const x86 = process.arch === 'x64';

// A raw `syscall` with the path in rdi, returning rdi after it (x86_64 machine
// code): the kernel preserves every register but rax, rcx and r11.
const PROGRAM = `
import ctypes, mmap, os, sys
def fds(): return sorted(int(n) for n in os.listdir('/proc/self/fd'))
before = fds()
os.chdir('/retarget/dir')
print('cwd', os.getcwd())
print('fds', fds() == before)
try:
    os.chdir('/retarget/file')
except OSError as e:
    print('file', e.errno)
print('fds', fds() == before)
try:
    os.chdir('/retarget/twice')
except OSError as e:
    print('twice', e.errno)
try:
    os.chdir('/retarget/nosuch')
except OSError as e:
    print('nosuch', e.errno)
if sys.argv[1] == 'x86':
    code = bytes([0xb8, 80, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xf8, 0xc3])  # mov eax,80; syscall; mov rax,rdi; ret
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    f = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(address)
    path = ctypes.create_string_buffer(b'/retarget/dir')
    print('rdi', f(path) == ctypes.addressof(path))
sys.stdout.flush()
os.execv('/retarget/exec', ['sh', '-c', 'echo exec "$0" "$(pwd)"'])
`;

let work: string;
beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'sandlock-retarget-')));
  mkdirSync(join(work, 'dir'));
  mkdirSync(join(work, 'twice'));
  mkdirSync(join(work, 'parent/second'), { recursive: true });
  mkdirSync(join(work, 'parent/other'), { recursive: true });
  writeFileSync(join(work, 'file'), 'not a directory\n');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!hasPython)('a retarget answer', () => {
  let supervisor: Supervisor;
  const errors: DispatchError[] = [];
  beforeAll(async () => {
    supervisor = await Supervisor.start({
      plugins: [
        {
          module: testModule('retarget.ts'),
          options: {
            dir: join(work, 'dir'),
            file: join(work, 'file'),
            program: '/bin/sh',
            twice: join(work, 'twice'),
            parent: join(work, 'parent'),
          },
        },
      ],
      onError: (error) => errors.push(error),
    });
  });
  afterAll(() => supervisor.close());

  it('runs fchdir and execveat in the caller, leaves no descriptor, keeps its registers', async () => {
    const { session, finished } = await supervise(supervisor, [
      PYTHON,
      '-c',
      PROGRAM,
      x86 ? 'x86' : 'other',
    ]);
    const result = await finished;
    await session?.closed;
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines).toEqual([
      `cwd ${join(work, 'dir')}`,
      'fds True',
      'file 20', // ENOTDIR: the retargeted call's own result
      'fds True',
      'twice 1', // EPERM: the thread was traced already, nothing ran
      'nosuch 38', // ENOSYS
      ...(x86 ? ['rdi True'] : []),
      `exec sh ${join(work, 'dir')}`,
    ]);
    if (!x86) console.warn('the register check is x86_64 machine code: not run here');
    expect(errors.filter((error) => !/no_such_call/.test(error.message))).toEqual([]);
  });

  it('runs a second call on the descriptor the first returned, and replaces the arguments an exec gives', async () => {
    const program = `
import os
def fds(): return sorted(int(n) for n in os.listdir('/proc/self/fd'))
before = fds()
os.chdir('/retarget/second')
print('second', os.getcwd())
try:
    os.chdir('/retarget/other')
except OSError as e:
    print('other', e.errno, os.getcwd())
print('fds', fds() == before, flush=True)
os.execv('/retarget/args', ['sh', '-c', 'echo "$0" "$1"', 'zero', 'one'])
`;
    const { session, finished } = await supervise(supervisor, [PYTHON, '-c', program]);
    const result = await finished;
    await session?.closed;
    expect(result.stderr).toBe('');
    expect(result.stdout.trim().split('\n')).toEqual([
      `second ${join(work, 'parent/second')}`,
      `other 13 ${join(work, 'parent/second')}`, // EACCES: not the object named, fchdir not run
      'fds True',
      `replaced ${'x'.repeat(300)} one`,
    ]);
  });
});

describe('answer.retarget', () => {
  it('takes integers and the injected descriptor, at most six', async () => {
    const { answer } = await import('../src/index.js');
    expect(answer.retarget('fchdir', ['fd'], { fd: 7 })).toEqual({
      kind: 'retarget',
      syscall: 'fchdir',
      args: ['fd'],
      fd: 7,
      cloexec: true,
      execArgs: [],
      second: null,
      apart: null,
    });
    expect(answer.retarget('close', [3])).toMatchObject({ args: [3n], fd: null });
    const sameAs = { dev: 1n, ino: 2n };
    expect(
      answer.retarget('openat', ['fd', 4096, 0, 0], { fd: 7, apart: { sameAs, cloexec: true } }),
    ).toMatchObject({ apart: { sameAs, cloexec: true } });
    expect(() =>
      answer.retarget('openat', [0, 4096, 0, 0], { apart: { sameAs, cloexec: true } }),
    ).toThrow(/apart injects an fd/);
    expect(() => answer.retarget('fchdir', ['fd'])).toThrow(/no fd is injected/);
    expect(() => answer.retarget('x', [1, 2, 3, 4, 5, 6, 7])).toThrow(/at most 6/);
    expect(() => answer.retarget('fchdir', ['fd'], { fd: -1 })).toThrow(/bad fd/);
  });
});
