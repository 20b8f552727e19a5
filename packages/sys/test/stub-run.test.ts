// Runs the exec stub for real: the ELF from buildStubElf() in a temp file,
// started by child_process.spawn with the launch script written to its fd 3
// (Node makes that extra 'pipe' a unix socketpair). A stub for the host arch
// runs directly; one for the other arch runs under qemu-user when installed.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { ERRNO, SOCK_SEQPACKET, SOCK_STREAM } from '../src/index.js';
import { encodeScmRights } from '../src/structs/cmsghdr.js';
import { encodeIovecInto, IOVEC_SIZE } from '../src/structs/iovec.js';
import { encodeMsghdrInto, MSGHDR_SIZE } from '../src/structs/msghdr.js';
import { AF_UNIX } from '../src/structs/sockaddr.js';
import {
  buildStubElf,
  decodeStubFailure,
  SCRIPT_CAPACITY,
  SCRIPT_HEADER_SIZE,
  SCRIPT_STEP_SIZE,
  ScriptEncoder,
  STUB_FAILURE_SIZE,
} from '../src/stub/index.js';
import { encodeForkZygote } from '../src/stub/zygote.js';
import { ARCHES, type Arch, hostArch, syscallNumber } from '../src/syscalls/index.js';

const { EBADF, ENOENT } = ERRNO;
const CONTROL_FD = 3;

const workDir = mkdtempSync(join(tmpdir(), 'sandlock-stub-run-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function commandWorks(command: string, args: readonly string[] = ['--version']): boolean {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

const QEMU: Record<Arch, readonly string[]> = {
  x86_64: ['qemu-x86_64-static', 'qemu-x86_64'],
  aarch64: ['qemu-aarch64-static', 'qemu-aarch64'],
};

/** How to start an ELF of `arch` here: a command prefix, or why it cannot run. */
function runnerFor(arch: Arch): { prefix: string[] } | { skip: string } {
  if (arch === hostArch()) return { prefix: [] };
  const qemu = QEMU[arch].find((candidate) => commandWorks(candidate));
  if (qemu) return { prefix: [qemu] };
  return {
    skip: `no ${QEMU[arch].join(' or ')} on PATH to run ${arch} code on this ${hostArch()} host`,
  };
}

function writeStub(arch: Arch): string {
  const path = join(workDir, `stub-${arch}`);
  writeFileSync(path, buildStubElf(arch));
  chmodSync(path, 0o755);
  return path;
}

interface StubRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  pid: number;
  stdout: Buffer;
  stderr: string;
  /** Everything the stub (or the program it ran) wrote to fd 3. */
  control: Buffer;
}

interface Feed {
  /** Written to fd 3 one after another, with `pauseMs` between them; then fd 3 is shut for writing. */
  chunks: readonly Buffer[];
  pauseMs?: number;
}

async function runStub(command: readonly string[], feed: Feed): Promise<StubRun> {
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  const control = child.stdio[CONTROL_FD] as Socket;
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const fromControl: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  control.on('data', (chunk: Buffer) => fromControl.push(chunk));
  // A stub that rejects its script exits before reading all of it: EPIPE here.
  control.on('error', () => {});
  // 'close' comes after the exit and after every stdio stream, fd 3 included, ended.
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve([code, signal]));
  });
  for (const [index, chunk] of feed.chunks.entries()) {
    if (index > 0 && feed.pauseMs) await sleep(feed.pauseMs);
    if (!control.destroyed) control.write(chunk);
  }
  if (!control.destroyed) control.end();
  const [code, signal] = await closed;
  return {
    code,
    signal,
    pid: child.pid!,
    stdout: Buffer.concat(stdout),
    stderr: Buffer.concat(stderr).toString(),
    control: Buffer.concat(fromControl),
  };
}

describe.each(ARCHES)('exec stub on %s', (arch) => {
  const runner = runnerFor(arch);
  const skip = 'skip' in runner ? runner.skip : undefined;
  if (skip) console.warn(`stub-run: skipping the ${arch} stub: ${skip}`);
  const test = it.skipIf(skip !== undefined);
  const nr = (name: string) => syscallNumber(name, arch);
  let stubPath: string | undefined;

  function run(script: Buffer | Feed): Promise<StubRun> {
    stubPath ??= writeStub(arch);
    const prefix = 'prefix' in runner ? runner.prefix : [];
    const feed = Buffer.isBuffer(script) ? { chunks: [script] } : script;
    return runStub([...prefix, stubPath], feed);
  }

  function helloScript(exitStatus: number): ScriptEncoder {
    const script = new ScriptEncoder();
    script.step({ name: 'write', nr: nr('write'), args: [1, script.cstring('hello\n'), 6] });
    script.step({ name: 'exit_group', nr: nr('exit_group'), args: [exitStatus] });
    return script;
  }

  test('forks a zygote that forks a joined program for a message with four descriptors', async () => {
    // The program's side plays the supervisor too: a SOCK_SEQPACKET pair (4,
    // 5) for the zygote, whose end is 5; a stream pair (6, 7) whose end 7
    // goes to the zygote with 0, 1 and 2, and over whose end 6 the joined
    // process's own script comes.
    const joined = new ScriptEncoder();
    joined.step({ name: 'write', nr: nr('write'), args: [1, joined.cstring('joined\n'), 7] });
    joined.step({ name: 'exit_group', nr: nr('exit_group'), args: [0] });
    const child = joined.encode(CONTROL_FD);
    const script = new ScriptEncoder();
    const pairs = script.zeros(16);
    script.step({
      name: 'socketpair (zygote)',
      nr: nr('socketpair'),
      args: [AF_UNIX, SOCK_SEQPACKET, 0, pairs],
      expect: 0,
    });
    encodeForkZygote(script, arch, 5);
    script.step({
      name: 'socketpair (join)',
      nr: nr('socketpair'),
      args: [AF_UNIX, SOCK_STREAM, 0, pairs + 8n],
      expect: 0,
    });
    const iov = Buffer.alloc(IOVEC_SIZE);
    encodeIovecInto(iov, 0, { base: script.cstring('j'), len: 1n });
    const control = encodeScmRights([0, 1, 2, 7]);
    const message = Buffer.alloc(MSGHDR_SIZE);
    encodeMsghdrInto(message, 0, {
      iov: script.bytes(iov),
      iovLen: 1n,
      control: script.bytes(control),
      controlLen: BigInt(control.length),
    });
    script.step({
      name: 'sendmsg to the zygote',
      nr: nr('sendmsg'),
      args: [4, script.bytes(message), 0],
      expect: 1,
    });
    script.step({ name: 'close 7', nr: nr('close'), args: [7], expect: 0 });
    script.step({
      name: 'write the joined script',
      nr: nr('write'),
      args: [6, script.bytes(child), child.length],
      expect: child.length,
    });
    // End of stream once the joined process has exited (no failure record).
    script.step({ name: 'read', nr: nr('read'), args: [6, script.zeros(16), 16], expect: 0 });
    script.step({ name: 'exit_group', nr: nr('exit_group'), args: [0] });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.control.length).toBe(0);
    expect(result.stdout.toString()).toBe('joined\n');
    expect(result.code).toBe(0);
  });

  test('runs write and exit_group', async () => {
    const result = await run(helloScript(7).encode(CONTROL_FD));
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe('hello\n');
    expect(result.code).toBe(7);
    expect(result.control.length).toBe(0);
  });

  test('reads a script that arrives in small pieces', async () => {
    const script = helloScript(5).encode(CONTROL_FD);
    const cuts = [3, 20, SCRIPT_HEADER_SIZE, 50, 200, script.length - 1];
    const chunks = [0, ...cuts].map((start, index) => script.subarray(start, cuts[index]));
    const result = await run({ chunks, pauseMs: 15 });
    expect(result.stdout.toString()).toBe('hello\n');
    expect(result.code).toBe(5);
  });

  test('reports a fatal step that fails with its index and -errno, then exits 127', async () => {
    const script = new ScriptEncoder();
    script.step({ name: 'write', nr: nr('write'), args: [1, script.cstring('before\n'), 7] });
    script.step({ name: 'close 9999', nr: nr('close'), args: [9999], fatal: true });
    script.step({ name: 'never', nr: nr('exit_group'), args: [0] });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.stdout.toString()).toBe('before\n');
    expect(result.code).toBe(127);
    expect(result.control.length).toBe(STUB_FAILURE_SIZE);
    const failure = decodeStubFailure(result.control);
    expect(failure).toEqual({ step: 1, result: BigInt(-EBADF), errno: EBADF });
    expect(script.stepNames()[failure.step]).toBe('close 9999');
  });

  test('goes on after a failing step that is not fatal', async () => {
    const script = new ScriptEncoder();
    script.step({ name: 'close 9999', nr: nr('close'), args: [9999] });
    script.step({ name: 'exit_group', nr: nr('exit_group'), args: [3] });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.code).toBe(3);
    expect(result.control.length).toBe(0);
  });

  test('reports a result other than the expected one (FATAL_UNLESS_EQUAL)', async () => {
    const script = new ScriptEncoder();
    const abc = script.cstring('abc');
    script.step({ name: 'write 3 of 3', nr: nr('write'), args: [1, abc, 3], expect: 3 });
    script.step({ name: 'write 3, expecting 2', nr: nr('write'), args: [1, abc, 3], expect: 2 });
    script.step({ name: 'never', nr: nr('exit_group'), args: [0] });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.stdout.toString()).toBe('abcabc');
    expect(result.code).toBe(127);
    expect(decodeStubFailure(result.control)).toEqual({ step: 1, result: 3n });
  });

  test('stores a result where store_address says, before the fatal check', async () => {
    const script = new ScriptEncoder();
    const pid = script.u64Slot(0xdeadn);
    const closeResult = script.u64Slot();
    script.step({ name: 'getpid', nr: nr('getpid'), args: [], store: pid });
    script.step({ name: 'write pid', nr: nr('write'), args: [1, pid, 8], expect: 8 });
    script.step({ name: 'close 9999', nr: nr('close'), args: [9999], store: closeResult });
    script.step({ name: 'write close result', nr: nr('write'), args: [1, closeResult, 8] });
    script.step({ name: 'close 9999 again', nr: nr('close'), args: [9999], fatal: true });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.code).toBe(127);
    expect(result.stdout.length).toBe(16);
    // Under qemu-user the guest's getpid is the qemu process's pid: still child.pid.
    expect(result.stdout.readBigUInt64LE(0)).toBe(BigInt(result.pid));
    expect(result.stdout.readBigInt64LE(8)).toBe(BigInt(-EBADF));
    expect(decodeStubFailure(result.control).step).toBe(4);
  });

  // Under qemu-user, execve is the host's execve: /bin/echo is a host binary
  // and runs natively, which still exercises the guest stub's argv/envp arrays.
  test('execs a program with exactly the argv and envp given', async () => {
    const script = new ScriptEncoder();
    const argv = ['/bin/echo', 'a b', '', 'ü'];
    script.step({
      name: 'execve /bin/echo',
      nr: nr('execve'),
      args: [script.cstring('/bin/echo'), script.cstringArray(argv), script.cstringArray(['X=1'])],
      fatal: true,
    });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe('a b  ü\n');
    expect(result.code).toBe(0);
    expect(result.control.length).toBe(0);
  });

  test('passes the environment through execve', async () => {
    const script = new ScriptEncoder();
    const env = ['X=1', 'Y=ü é', 'EMPTY='];
    script.step({
      name: 'execve /usr/bin/env',
      nr: nr('execve'),
      args: [
        script.cstring('/usr/bin/env'),
        script.cstringArray(['env']),
        script.cstringArray(env),
      ],
      fatal: true,
    });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.stdout.toString()).toBe(`${env.join('\n')}\n`);
    expect(result.code).toBe(0);
  });

  test('reports a failed execve', async () => {
    const script = new ScriptEncoder();
    const path = script.cstring('/nonexistent/sandlock-program');
    script.step({
      name: 'execve',
      nr: nr('execve'),
      args: [path, script.pointerArray([path]), script.pointerArray([])],
      fatal: true,
    });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.code).toBe(127);
    expect(decodeStubFailure(result.control)).toEqual({
      step: 0,
      result: BigInt(-ENOENT),
      errno: ENOENT,
    });
  });

  test('reads exactly total_size bytes, leaving the rest of fd 3 to the program', async () => {
    const script = new ScriptEncoder();
    script.step({
      name: 'execve /bin/sh',
      nr: nr('execve'),
      args: [
        script.cstring('/bin/sh'),
        script.cstringArray(['sh', '-c', 'exec cat <&3']),
        script.cstringArray(['PATH=/usr/bin:/bin']),
      ],
      fatal: true,
    });
    const result = await run({
      chunks: [script.encode(CONTROL_FD), Buffer.from('after the script\n')],
    });
    expect(result.stdout.toString()).toBe('after the script\n');
    expect(result.code).toBe(0);
  });

  test('exits 127 without a report when the steps run out', async () => {
    const script = new ScriptEncoder();
    script.step({ name: 'write', nr: nr('write'), args: [1, script.cstring('x'), 1] });
    const result = await run(script.encode(CONTROL_FD));
    expect(result.stdout.toString()).toBe('x');
    expect(result.code).toBe(127);
    expect(result.control.length).toBe(0);
  });

  test('exits 127 without a report for an empty script', async () => {
    const result = await run(new ScriptEncoder({ maxSteps: 0 }).encode(CONTROL_FD));
    expect(result.code).toBe(127);
    expect(result.control.length).toBe(0);
  });

  describe('rejects a bad script with exit 127 and no report', () => {
    async function expectRejected(script: Buffer | Feed): Promise<void> {
      const result = await run(script);
      expect(result.code).toBe(127);
      expect(result.stdout.length).toBe(0);
      expect(result.control.length).toBe(0);
    }

    function withHeader(field: 'magic' | 'total_size' | 'count', value: bigint): Buffer {
      const script = helloScript(0).encode(CONTROL_FD);
      const offset = { magic: 0, total_size: 8, count: 16 }[field];
      script.writeBigUInt64LE(value, offset);
      return script;
    }

    test('bad magic', () => expectRejected(withHeader('magic', 0x3230425554534c53n)));
    test('count larger than total_size allows', () => {
      const script = helloScript(0).encode(CONTROL_FD);
      const mostSteps = Math.floor((script.length - SCRIPT_HEADER_SIZE) / SCRIPT_STEP_SIZE);
      return expectRejected(withHeader('count', BigInt(mostSteps + 1)));
    });
    // 32 + count * 80 wraps around to 96: a stub without the bound on count
    // would accept this and run garbage steps.
    test('count whose size overflows 64 bits', () =>
      expectRejected(withHeader('count', 0x0333333333333334n)));
    test('total_size below the header', () => expectRejected(withHeader('total_size', 16n)));
    test('total_size above the capacity', () =>
      expectRejected(withHeader('total_size', BigInt(SCRIPT_CAPACITY) + 8n)));
    test('script cut short (fd 3 ends early)', () => {
      const script = helloScript(0).encode(CONTROL_FD);
      return expectRejected({ chunks: [script.subarray(0, script.length - 9)] });
    });
    test('header cut short', () => {
      const script = helloScript(0).encode(CONTROL_FD);
      return expectRejected({ chunks: [script.subarray(0, 10)] });
    });
    test('nothing at all', () => expectRejected({ chunks: [] }));
  });
});

// An aarch64 program exec'd by the aarch64 stub. Under qemu-user the stub's
// execve becomes the host kernel's execve, so an aarch64 file only runs on an
// x86_64 host when binfmt_misc sends aarch64 ELFs to qemu (the kernel refuses
// it with ENOEXEC otherwise). Whether that works is measured, not guessed: the
// test runs the program directly first.
describe('aarch64 stub execs an aarch64 program', () => {
  const runner = runnerFor('aarch64');
  const helloPath = join(workDir, 'arm64-hello');

  function buildArm64Hello(): string | undefined {
    const as = ['aarch64-linux-gnu-as', ...(hostArch() === 'aarch64' ? ['as'] : [])].find((c) =>
      commandWorks(c),
    );
    const ld = ['aarch64-linux-gnu-ld', ...(hostArch() === 'aarch64' ? ['ld'] : [])].find((c) =>
      commandWorks(c),
    );
    if (!as || !ld) return 'no aarch64-linux-gnu-as/-ld (binutils-aarch64-linux-gnu) to build it';
    const source = join(workDir, 'arm64-hello.S');
    writeFileSync(
      source,
      [
        '.globl _start',
        '_start: mov x0, #1', // write(1, msg, 9)
        '        adr x1, msg',
        '        mov x2, #9',
        '        mov x8, #64',
        '        svc #0',
        '        mov x0, #0', // exit(0)
        '        mov x8, #93',
        '        svc #0',
        'msg:    .ascii "arm64 ok\\n"',
        '',
      ].join('\n'),
    );
    const object = join(workDir, 'arm64-hello.o');
    for (const [tool, args] of [
      [as, ['-o', object, source]],
      [ld, ['-static', '-o', helloPath, object]],
    ] as const) {
      const result = spawnSync(tool, args, { encoding: 'utf8' });
      if (result.status !== 0) throw new Error(`${tool} failed: ${result.stderr}`);
    }
    const direct = spawnSync(helloPath, { encoding: 'utf8' });
    if (direct.stdout === 'arm64 ok\n') return undefined;
    return (
      `this ${hostArch()} kernel cannot exec an aarch64 binary (${direct.error?.message ?? direct.stderr}); ` +
      'register qemu-aarch64 with binfmt_misc as root: mount -t binfmt_misc binfmt_misc ' +
      '/proc/sys/fs/binfmt_misc; cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register'
    );
  }

  const reason = 'skip' in runner ? runner.skip : buildArm64Hello();
  if (reason) console.warn(`stub-run: skipping the aarch64 execve test: ${reason}`);

  it.skipIf(reason !== undefined)('runs a static aarch64 binary through execve', async () => {
    const script = new ScriptEncoder();
    const path = script.cstring(helloPath);
    script.step({
      name: 'execve arm64-hello',
      nr: syscallNumber('execve', 'aarch64'),
      args: [path, script.pointerArray([path]), script.pointerArray([])],
      fatal: true,
    });
    const stub = writeStub('aarch64');
    const prefix = 'prefix' in runner ? runner.prefix : [];
    const result = await runStub([...prefix, stub], { chunks: [script.encode(CONTROL_FD)] });
    expect(result.control.length).toBe(0);
    expect(result.stdout.toString()).toBe('arm64 ok\n');
    expect(result.code).toBe(0);
  });
});
