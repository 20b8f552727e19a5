import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addressOf,
  readCString,
  readCStringBytes,
  readMemory,
  readMemoryPartial,
  SysError,
  writeMemory,
} from '../src/index.js';
import { forceMemoryRoute } from '../src/memory.js';

const hasPython = spawnSync('python3', ['-c', 'pass']).status === 0;
if (!hasPython) console.warn('skipping the unmapped-page test: python3 is not installed');

/** An address inside `buffer` that lies `before` bytes ahead of a 4 KiB boundary. */
function nearBoundary(buffer: Buffer, before: number): number {
  const base = addressOf(buffer);
  const toBoundary = Number(4096n - (base % 4096n));
  return toBoundary >= before ? toBoundary - before : toBoundary + 4096 - before;
}

// process_vm_readv/writev, and /proc/PID/mem where a seccomp profile refuses them.
describe.each(['process_vm', 'proc_mem'] as const)('child memory through %s', (route) => {
  beforeAll(() => forceMemoryRoute(route));
  afterAll(() => forceMemoryRoute(null));

  it('reads and writes memory of a process', () => {
    const buffer = Buffer.from('hello, memory');
    const address = addressOf(buffer);
    expect(readMemory(process.pid, address, 5).toString()).toBe('hello');
    writeMemory(process.pid, address + 7n, Buffer.from('MEMORY'));
    expect(buffer.toString()).toBe('hello, MEMORY');
  });

  it('reads C strings of any length across page boundaries', () => {
    const buffer = Buffer.alloc(5 * 4096);
    const start = nearBoundary(buffer, 10);
    const text = 'é'.repeat(5000); // 10,000 bytes: crosses three boundaries
    buffer.write(text, start, 'utf8');
    expect(readCString(process.pid, addressOf(buffer) + BigInt(start))).toBe(text);
    expect(readCStringBytes(process.pid, addressOf(buffer) + BigInt(start), 10_000)).toHaveLength(
      10_000,
    );
  });

  it('refuses strings longer than the limit with ENAMETOOLONG', () => {
    const buffer = Buffer.alloc(3 * 4096, 'a');
    buffer[buffer.length - 1] = 0;
    expect(() => readCString(process.pid, addressOf(buffer), 100)).toThrow(
      expect.objectContaining({ code: 'ENAMETOOLONG' }),
    );
  });

  it('reads an empty string and rejects NULL', () => {
    const buffer = Buffer.from([0]);
    expect(readCString(process.pid, addressOf(buffer))).toBe('');
    expect(() => readCString(process.pid, 0n)).toThrow(SysError);
  });

  it('reports an unreadable process with a SysError', () => {
    expect(() => readMemory(0x7ffffff0, 0x1000n, 8)).toThrow(
      expect.objectContaining({ syscall: 'process_vm_readv', code: 'ESRCH' }),
    );
  });

  it.skipIf(!hasPython)('stops at unmapped memory: EFAULT, partial reads', async () => {
    // A page of 'x' with no NUL, followed by an unmapped page.
    const program = [
      'import mmap, ctypes, sys',
      'm = mmap.mmap(-1, 8192)',
      'base = ctypes.addressof(ctypes.c_char.from_buffer(m))',
      'libc = ctypes.CDLL(None)',
      'libc.munmap(ctypes.c_void_p(base + 4096), ctypes.c_size_t(4096))',
      "ctypes.memset(base, ord('x'), 4096)",
      'print(base, flush=True)',
      'sys.stdin.read()',
    ].join('\n');
    const child = spawn('python3', ['-c', program], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve) =>
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())),
      );
      const base = BigInt(line.trim());
      expect(readMemoryPartial(child.pid!, base + 4000n, 200)).toEqual(Buffer.alloc(96, 'x'));
      expect(() => readMemory(child.pid!, base + 4000n, 200)).toThrow(
        expect.objectContaining({ code: 'EFAULT' }),
      );
      expect(() => readCString(child.pid!, base)).toThrow(
        expect.objectContaining({ code: 'EFAULT' }),
      );
    } finally {
      child.kill('SIGKILL');
    }
  });
});
