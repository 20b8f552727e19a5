// The argument strings of a program a retargeted exec started, replaced at
// its PTRACE_EVENT_EXEC stop: the exec has made its memory new and left it
// one thread (de_thread(), fs/exec.c), stopped before its first
// instruction, so nothing of the sandbox can see or race the change. The
// stack the kernel built (create_elf_tables(), fs/binfmt_elf.c) starts at
// the stack pointer: argc, the argv pointers and NULL, the envp pointers
// and NULL, the auxiliary vector up to AT_NULL; the strings lie above. The
// new strings go just below that stack pointer, a copy of the pointer block
// below them with the replaced pointers changed, and the stack pointer
// moves down to it, 16-byte aligned as the entry ABI wants; the kernel's
// strings stay where they are (AT_EXECFN, AT_RANDOM… point there).
// setup_arg_pages() grew the stack 128 KiB below what it filled, so the
// new bytes are mapped. /proc/<pid>/cmdline still shows the kernel's
// strings (mm->arg_start, which only prctl(PR_SET_MM) of the process
// itself, with CAP_SYS_RESOURCE, changes).
import {
  forgetProcessMemory,
  MAX_ARG_STRLEN,
  type RegisterSet,
  readMemoryPartial,
  type SyscallRegisters,
  writeMemory,
} from '@sandlock/sys';
import type { ExecArg } from './answer.js';

const WORD = 8;
/** Reads stop at a 4 KiB boundary (the stack pointer is 16-byte aligned, so a word never straddles one). */
const PAGE = 4096;
/** Far more than any program's argv and envp pointers, or its auxv: a bound on a malformed stack. */
const MAX_WORDS = 1 << 20;

/** The words from `sp` through the end of the auxiliary vector, read a page at a time. */
function pointerBlock(pid: number, sp: bigint): BigUint64Array {
  const words: bigint[] = [];
  let chunk: Buffer = Buffer.alloc(0);
  let chunkAt = sp;
  let at = sp;
  const next = (): bigint => {
    if (words.length >= MAX_WORDS) throw new RangeError('exec stack: no end');
    if (at + BigInt(WORD) > chunkAt + BigInt(chunk.length)) {
      chunkAt = at;
      chunk = readMemoryPartial(pid, at, PAGE - Number(at % BigInt(PAGE)));
      if (chunk.length < WORD) throw new RangeError('exec stack: unreadable');
    }
    const word = chunk.readBigUInt64LE(Number(at - chunkAt));
    at += BigInt(WORD);
    words.push(word);
    return word;
  };
  const argc = next();
  for (let i = 0n; i < argc; i++) next();
  next(); // argv's NULL
  while (next() !== 0n); // envp through its NULL
  for (;;) {
    const type = next();
    next();
    if (type === 0n) break; // AT_NULL
  }
  return BigUint64Array.from(words);
}

/**
 * Replaces argv[index] by value for each of `args` in the process stopped
 * at its exec event (`regs` loaded from it here, its stack pointer moved).
 * Throws when its memory cannot be read or written.
 */
export function replaceExecArgs(
  pid: number,
  regs: RegisterSet,
  layout: SyscallRegisters,
  args: readonly ExecArg[],
): void {
  // A /proc/<pid>/mem descriptor opened before the exec still names the old memory.
  forgetProcessMemory();
  try {
    if (regs.load(pid) < 0) throw new Error('exec stack: registers');
    const sp = regs.get(layout.sp);
    const block = pointerBlock(pid, sp);
    const argc = block[0]!;
    const strings = args
      .filter((arg) => BigInt(arg.index) < argc)
      .map((arg) => ({ index: arg.index, bytes: Buffer.from(`${arg.value}\0`, 'latin1') }));
    if (strings.length === 0) return;
    const size = strings.reduce((sum, s) => sum + s.bytes.length, 0);
    if (size > MAX_ARG_STRLEN) throw new RangeError('exec stack: arguments too long');
    let at = sp - BigInt(size);
    const stringsAt = at;
    for (const s of strings) {
      block[1 + s.index] = at;
      at += BigInt(s.bytes.length);
    }
    const newSp = (stringsAt - BigInt(block.length * WORD)) & ~0xfn;
    writeMemory(pid, stringsAt, Buffer.concat(strings.map((s) => s.bytes)));
    writeMemory(pid, newSp, Buffer.from(block.buffer, block.byteOffset, block.byteLength));
    regs.set(layout.sp, newSp);
    if (regs.store(pid) < 0) throw new Error('exec stack: registers');
  } finally {
    forgetProcessMemory();
  }
}
