import { SCRIPT_BASE, SCRIPT_CAPACITY } from './elf.js';

// Launch script layout, read by the exec stub (asm/*.S) from fd 3 to SCRIPT_BASE.
// Every field is a u64, little-endian.
//
//   header   magic, total_size, count, error_fd                     32 bytes
//   steps    count x { nr, a0..a5, flags, store_address, expect }   80 bytes each
//            (then zeroes up to the encoder's maxSteps; with STEP_FORK_REAPER,
//            expect holds the address of a ReaperParams block)
//   data     strings, pointer arrays, structs; 8-byte aligned items
//
// Pointer arguments are absolute addresses (SCRIPT_BASE + offset).

/** "SLSTUB01" read as a u64 LE. */
export const SCRIPT_MAGIC = 0x3130425554534c53n;
export const SCRIPT_HEADER_SIZE = 32;
export const SCRIPT_STEP_SIZE = 80;
/** The failure record the stub writes to error_fd: { u64 step_index, u64 raw_result }. */
export const STUB_FAILURE_SIZE = 16;
/** Step flag: a result in [-4095, -1] (a -errno) fails the launch. */
export const STEP_FATAL_ON_ERROR = 1;
/** Step flag: a result other than `expect` fails the launch. */
export const STEP_FATAL_UNLESS_EQUAL = 2;
/**
 * Step flag: the step is a fork (`clone(SIGCHLD, 0, 0, 0, 0)`) whose parent
 * becomes the sandbox's reaper. A negative result fails the launch; the child
 * (result 0) goes on with the next step; the parent runs the reaper with the
 * {@link REAPER_PARAM ReaperParams} block whose address is in the step's
 * `expect` field (which is not compared then).
 */
export const STEP_FORK_REAPER = 4;

/**
 * Byte offsets in the ReaperParams block (u64 LE fields, in the script data)
 * that a {@link STEP_FORK_REAPER} step points at.
 *
 * The reaper (the parent of the fork, a child subreaper) first does
 * `close_range(0, closeLast, 0)` unless closeLast is 0, then loops: it reaps
 * every child with `wait4(-1, &status, WNOHANG | __WALL)`, remembering the
 * status of its first child (the program); when none is left to reap it
 * ppolls the signalfd and (until it has fired) the pidfd. A readable pidfd
 * (Node is gone) makes it `kill(killTarget, SIGKILL)`; every signal `signo`
 * read from the signalfd with `sigmap[signo] != 0` makes it
 * `kill(killTarget, sigmap[signo])`, except one the reaper sent itself
 * (ssi_pid is its own pid, as when killTarget is a process group it is in).
 * When no child is left (ECHILD) it exits with the first child's exit code, or
 * kills itself with the signal that killed it (no core dump, signal mask
 * cleared; exit(128 + signal) should it survive); a first child never reaped
 * counts as exit(127).
 *
 * The signalfd and the pidfd must be numbered above closeLast (a closed one
 * polls as POLLNVAL: the reaper would spin, or take Node for gone), and the
 * signalfd must be non-blocking and take SIGCHLD (blocked), or the reaper
 * never wakes up for an ended child. kill(-1) spares the reaper; a process
 * group it is in does not, and SIGKILL or SIGSTOP sent there stops the reaper
 * too (it ignores only the blockable signals it sent itself).
 */
export const REAPER_PARAM = {
  /** Address of 2 x struct pollfd { i32 fd; i16 events; i16 revents }: [0] signalfd, [1] pidfd of Node. The reaper sets events and revents. */
  pollfds: 0,
  /** i64: the pid argument of kill(2) for the whole sandbox (-1 inside a Landlock signal scope, or -pgid). */
  killTarget: 8,
  /** Address of 65 bytes: the signal to send for each signal received, 0 to send none. */
  sigmap: 16,
  /** Address of a 128-byte buffer for one struct signalfd_siginfo. */
  siginfo: 24,
  /** Last fd the reaper closes when it starts (close_range(0, closeLast, 0)); 0: closes none. */
  closeLast: 32,
  /** 16 zero bytes the reaper uses as an empty sigset and as struct rlimit {0, 0}. */
  zero: 40,
  /** 8 bytes the reaper has wait4 write the status word to. */
  status: 56,
} as const;
/** Size of the ReaperParams block. */
export const REAPER_PARAMS_SIZE = 64;
/** Steps an encoder makes room for unless told otherwise. */
export const DEFAULT_MAX_STEPS = 64;
/** The exit status of the stub when it fails or runs out of steps. */
export const STUB_EXIT_STATUS = 127;

const MAX_ARGS = 6;
const DATA_ALIGN = 8;
const U64_LIMIT = 1n << 64n;
const I64_MIN = -(1n << 63n);

/** A syscall argument: negative values are passed in two's complement (-100 for AT_FDCWD). */
export type ScriptArg = bigint | number;

export interface ScriptStep {
  /** What the step does, for error messages: `stepNames()[failure.step]`. */
  name: string;
  /** The syscall number for the target architecture. */
  nr: number | bigint;
  /** Up to six arguments; missing ones are 0. */
  args?: readonly ScriptArg[];
  /** Fail the launch when the result is a -errno ({@link STEP_FATAL_ON_ERROR}). */
  fatal?: boolean;
  /** Fail the launch unless the result equals this ({@link STEP_FATAL_UNLESS_EQUAL}). */
  expect?: ScriptArg;
  /** Address of an 8-byte slot in this script's data (see `u64Slot`) that receives the result. */
  store?: bigint;
  /**
   * Address of a ReaperParams block ({@link REAPER_PARAMS_SIZE} bytes in this
   * script's data, see {@link REAPER_PARAM}): the step forks and its parent
   * becomes the reaper ({@link STEP_FORK_REAPER}). Excludes `expect`.
   */
  reaper?: bigint;
}

export interface ScriptEncoderOptions {
  /**
   * Room reserved for steps; data is placed after it, so data addresses are
   * known as soon as the data is added. Defaults to {@link DEFAULT_MAX_STEPS}.
   */
  maxSteps?: number;
}

export interface StubFailure {
  /** Index of the failed step (into `stepNames()`). */
  step: number;
  /** The syscall's raw result, as a signed 64-bit value. */
  result: bigint;
  /** Set when `result` is a -errno. */
  errno?: number;
}

/** `value` as the u64 the stub loads into a register. */
function toU64(value: ScriptArg, what: string): bigint {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new RangeError(`sandlock: ${what} must be a safe integer or a bigint, got ${value}`);
  }
  const big = BigInt(value);
  if (big < I64_MIN || big >= U64_LIMIT) {
    throw new RangeError(`sandlock: ${what} does not fit in 64 bits: ${big}`);
  }
  return BigInt.asUintN(64, big);
}

interface EncodedStep {
  name: string;
  fields: bigint[]; // nr, a0..a5, flags, store_address, expect
}

/**
 * Builds a launch script for the exec stub. Data methods place bytes in the
 * script's data area and return their absolute address in the child; `step`
 * appends a syscall; `encode` produces the bytes to write to the stub's fd 3.
 */
export class ScriptEncoder {
  readonly maxSteps: number;
  /** Absolute address of the data area (after the room for steps). */
  readonly dataBase: bigint;
  readonly #dataOffset: number;
  readonly #steps: EncodedStep[] = [];
  readonly #chunks: { offset: number; bytes: Uint8Array }[] = [];
  #dataSize = 0;

  constructor(options: ScriptEncoderOptions = {}) {
    const maxSteps = options.maxSteps ?? DEFAULT_MAX_STEPS;
    const dataOffset = SCRIPT_HEADER_SIZE + maxSteps * SCRIPT_STEP_SIZE;
    if (!Number.isSafeInteger(maxSteps) || maxSteps < 0 || dataOffset > SCRIPT_CAPACITY) {
      throw new RangeError(`sandlock: maxSteps must be an integer from 0 to the script capacity`);
    }
    this.maxSteps = maxSteps;
    this.#dataOffset = dataOffset;
    this.dataBase = BigInt(SCRIPT_BASE + dataOffset);
  }

  /** Bytes the encoded script takes (header, room for steps, data). */
  get size(): number {
    return this.#dataOffset + this.#dataSize;
  }

  get stepCount(): number {
    return this.#steps.length;
  }

  /** Copies `data` into the script (8-byte aligned); returns its address. */
  bytes(data: Uint8Array): bigint {
    const offset = this.#allocate(data.length);
    this.#chunks.push({ offset, bytes: Uint8Array.from(data) });
    return this.#address(offset);
  }

  /** `size` zero bytes (8-byte aligned), e.g. for a struct a syscall fills in. */
  zeros(size: number): bigint {
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new RangeError(`sandlock: zeros() needs a byte count, got ${size}`);
    }
    return this.#address(this.#allocate(size));
  }

  /** `text` as UTF-8 with a terminating NUL; returns its address. */
  cstring(text: string): bigint {
    if (text.includes('\0')) {
      throw new TypeError(
        `sandlock: a C string cannot contain a NUL byte: ${JSON.stringify(text)}`,
      );
    }
    return this.bytes(Buffer.from(`${text}\0`, 'utf8'));
  }

  /** A NULL-terminated array of pointers (as argv and envp are); returns its address. */
  pointerArray(addresses: readonly bigint[]): bigint {
    const array = Buffer.alloc((addresses.length + 1) * 8);
    addresses.forEach((address, index) => {
      array.writeBigUInt64LE(toU64(address, `pointer ${index}`), index * 8);
    });
    return this.bytes(array);
  }

  /** The strings as C strings plus a NULL-terminated array pointing at them. */
  cstringArray(texts: readonly string[]): bigint {
    return this.pointerArray(texts.map((text) => this.cstring(text)));
  }

  /** An 8-byte slot holding `initial`, usable as a step's `store` address. */
  u64Slot(initial: ScriptArg = 0n): bigint {
    const slot = Buffer.alloc(8);
    slot.writeBigUInt64LE(toU64(initial, 'slot value'));
    return this.bytes(slot);
  }

  /** Appends a syscall step; returns its index (the `step` of a failure report). */
  step(step: ScriptStep): number {
    const args = step.args ?? [];
    const where = `step ${JSON.stringify(step.name)}`;
    if (args.length > MAX_ARGS) {
      throw new RangeError(`sandlock: ${where} has ${args.length} arguments, a syscall takes 6`);
    }
    if (this.#steps.length >= this.maxSteps) {
      throw new RangeError(
        `sandlock: ${where} exceeds the ${this.maxSteps} steps this script has room for (maxSteps)`,
      );
    }
    let flags = 0n;
    if (step.fatal) flags |= BigInt(STEP_FATAL_ON_ERROR);
    if (step.expect !== undefined) flags |= BigInt(STEP_FATAL_UNLESS_EQUAL);
    if (step.reaper !== undefined) {
      if (step.expect !== undefined) {
        throw new TypeError(`sandlock: ${where} has both expect and reaper; they share a field`);
      }
      if (!this.#inData(step.reaper, REAPER_PARAMS_SIZE)) {
        throw new RangeError(
          `sandlock: ${where} has its reaper parameters at 0x${step.reaper.toString(16)}, outside this script's data`,
        );
      }
      flags |= BigInt(STEP_FORK_REAPER);
    }
    const store = step.store ?? 0n;
    if (store !== 0n && !this.#inData(store, 8)) {
      throw new RangeError(
        `sandlock: ${where} stores its result at 0x${store.toString(16)}, outside this script's data`,
      );
    }
    const registers = Array.from({ length: MAX_ARGS }, (_, index) =>
      toU64(args[index] ?? 0, `${where} argument ${index}`),
    );
    this.#steps.push({
      name: step.name,
      fields: [
        toU64(step.nr, `${where} syscall number`),
        ...registers,
        flags,
        store,
        toU64(step.reaper ?? step.expect ?? 0, `${where} expected result`),
      ],
    });
    return this.#steps.length - 1;
  }

  /** The step names in order: index with a failure report's `step`. */
  stepNames(): string[] {
    return this.#steps.map((step) => step.name);
  }

  /** The script, with failures reported to the child's `errorFd`. */
  encode(errorFd: number): Buffer {
    if (!Number.isSafeInteger(errorFd) || errorFd < 0) {
      throw new RangeError(`sandlock: error fd must be a descriptor number, got ${errorFd}`);
    }
    const script = Buffer.alloc(this.size);
    script.writeBigUInt64LE(SCRIPT_MAGIC, 0);
    script.writeBigUInt64LE(BigInt(script.length), 8);
    script.writeBigUInt64LE(BigInt(this.#steps.length), 16);
    script.writeBigUInt64LE(BigInt(errorFd), 24);
    this.#steps.forEach((step, index) => {
      const at = SCRIPT_HEADER_SIZE + index * SCRIPT_STEP_SIZE;
      step.fields.forEach((field, slot) => {
        script.writeBigUInt64LE(field, at + slot * 8);
      });
    });
    for (const chunk of this.#chunks) script.set(chunk.bytes, this.#dataOffset + chunk.offset);
    return script;
  }

  /** Reserves `size` bytes of data; returns their offset in the data area. */
  #allocate(size: number): number {
    const offset = Math.ceil(this.#dataSize / DATA_ALIGN) * DATA_ALIGN;
    const end = offset + size;
    if (this.#dataOffset + end > SCRIPT_CAPACITY) {
      throw new RangeError(
        `sandlock: the launch script needs ${this.#dataOffset + end} bytes, more than the stub's ${SCRIPT_CAPACITY}`,
      );
    }
    this.#dataSize = end;
    return offset;
  }

  #address(offset: number): bigint {
    return this.dataBase + BigInt(offset);
  }

  /** Whether `size` bytes at `address` lie in this script's data. */
  #inData(address: bigint, size: number): boolean {
    return (
      address >= this.dataBase && address + BigInt(size) <= this.dataBase + BigInt(this.#dataSize)
    );
  }
}

/** Decodes the 16-byte record the stub writes to error_fd before exiting with 127. */
export function decodeStubFailure(record: Uint8Array): StubFailure {
  if (record.length < STUB_FAILURE_SIZE) {
    throw new RangeError(
      `sandlock: a stub failure record is ${STUB_FAILURE_SIZE} bytes, got ${record.length}`,
    );
  }
  const view = Buffer.from(record.buffer, record.byteOffset, STUB_FAILURE_SIZE);
  const step = Number(view.readBigUInt64LE(0));
  const result = view.readBigInt64LE(8);
  return result >= -4095n && result <= -1n
    ? { step, result, errno: Number(-result) }
    : { step, result };
}
