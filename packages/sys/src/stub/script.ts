import { FDS_PER_MESSAGE_MAX } from '../structs/cmsghdr.js';
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
 * Step flag: the step is a fork (`clone(SIGCHLD, 0, 0, 0, 0)`) whose child
 * becomes the sandbox's zygote; the parent goes on with the next step, also
 * when the fork failed (a negative result, fatal only with
 * {@link STEP_FATAL_ON_ERROR}). The child runs the zygote with the
 * {@link ZYGOTE_PARAM ZygoteParams} block whose address is in the step's
 * `expect` field (which is not compared then).
 */
export const STEP_FORK_ZYGOTE = 8;

/**
 * Byte offsets in the ZygoteParams block (u64 LE fields, in the script data)
 * that a {@link STEP_FORK_ZYGOTE} step points at.
 *
 * The zygote blocks every signal, ignores SIGCHLD (the kernel reaps its
 * children), sets PR_SET_PDEATHSIG to SIGKILL and exits unless its parent is
 * still `parent`; then it moves `socket` to fd 3 and closes every other
 * descriptor. For each message on fd 3 that brings exactly four descriptors
 * (they land at 0, 1, 2 and 4, as nothing else is open) it forks; the child
 * moves fd 4 to fd 3 and runs a launch script read from it, as the stub
 * does; a failed fork is written to fd 4 as the failure record {0, result}.
 * Then the zygote closes all but fd 3 again. A message with other
 * descriptors is dropped; the end of the socket ends the zygote (exit 0).
 */
export const ZYGOTE_PARAM = {
  /** The zygote's end of a SOCK_SEQPACKET socket (a descriptor of the child). */
  socket: 0,
  /** The pid of the zygote's parent (stored by a getpid step before the fork). */
  parent: 8,
  /** Address of a struct msghdr: one iovec of at least one byte, control room of 32 bytes. */
  message: 16,
  /** Address of a sigset (8 bytes) with every signal. */
  blocked: 24,
  /** Address of a struct sigaction (32 bytes) with the handler SIG_IGN. */
  sigaction: 32,
  /** Address of 16 bytes for a failure record. */
  failure: 40,
} as const;
/** Size of the ZygoteParams block. */
export const ZYGOTE_PARAMS_SIZE = 48;

/**
 * Byte offsets in the ReaperParams block (u64 LE fields, in the script data)
 * that a {@link STEP_FORK_REAPER} step points at.
 *
 * The reaper (the parent of the fork, a child subreaper) first does
 * `close_range(0, closeLast, 0)` unless closeLast is 0, then loops: it reaps
 * every child with `wait4(-1, &status, WNOHANG | __WALL)`, remembering the
 * status of its first child (the program); when none is left to reap it
 * ppolls the signalfd, (until it has fired) the pidfd, and (while it is open)
 * the broker socket. A readable pidfd (Node is gone) makes it
 * `kill(killTarget, SIGKILL)`; every signal `signo` read from the signalfd
 * with `sigmap[signo] != 0` makes it `kill(killTarget, sigmap[signo])`,
 * except one the reaper sent itself (ssi_pid is its own pid, as when
 * killTarget is a process group it is in). A readable broker socket makes it
 * serve one request (see {@link BROKER_REQUEST}). When no child is left
 * (ECHILD) it exits with the first child's exit code, or kills itself with the
 * signal that killed it (no core dump, signal mask cleared; exit(128 + signal)
 * should it survive); a first child never reaped counts as exit(127).
 *
 * The signalfd, the pidfd and the broker socket must be numbered above
 * closeLast (a closed one polls as POLLNVAL: the reaper would spin, or take
 * Node for gone), and the signalfd must be non-blocking and take SIGCHLD
 * (blocked), or the reaper never wakes up for an ended child. kill(-1) spares
 * the reaper; a process group it is in does not, and SIGKILL or SIGSTOP sent
 * there stops the reaper too (it ignores only the blockable signals it sent
 * itself).
 */
export const REAPER_PARAM = {
  /**
   * Address of 3 x struct pollfd { i32 fd; i16 events; i16 revents }: [0]
   * signalfd, [1] pidfd of Node, [2] broker socket (fd -1: none; events
   * POLLIN). The reaper sets the events of [0] and [1], and sets the fd of
   * [1] and [2] to -1 to stop polling them (ppoll(2) skips negative fds).
   */
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
  /**
   * Address of the request buffer of a {@link BROKER_BLOCK broker block}
   * (which the rest of the block precedes); unused while pollfds[2].fd is -1.
   */
  broker: 64,
} as const;
/** Size of the ReaperParams block. */
export const REAPER_PARAMS_SIZE = 72;
/** Bytes of the pollfds array a ReaperParams block points at. */
export const REAPER_POLLFDS_SIZE = 24;

/**
 * A request to the reaper's broker: one SOCK_SEQPACKET message of at most
 * {@link BROKER_REQUEST_MAX} bytes, u64 LE fields at these offsets, with up to
 * {@link BROKER_MAX_FDS} descriptors (SCM_RIGHTS). The reaper first applies
 * the request's `patches` to the message itself, then runs the syscall `nr`
 * with `args`, each changed as `kinds` says ({@link BROKER_ARG}), and
 * answers with the message echoed (data included, so what the syscall
 * wrote there comes back), its first u64 replaced by the raw result, and,
 * when `flags` has {@link BROKER_RETURNS_FD} and the result is not
 * negative, the result descriptor (SCM_RIGHTS), which it then closes, as it
 * closes every descriptor received. A request that is truncated (the
 * message or its descriptors), shorter than `data` or its patch table, or
 * names a descriptor it did not bring (-EBADF) or an offset past its end or
 * an unknown kind (-EINVAL) is answered with that error and not run (a
 * patch may have been applied).
 */
export const BROKER_REQUEST = {
  /** The syscall number for the reaper's architecture; the raw result in the reply. */
  nr: 0,
  /** 6 x u64. */
  args: 8,
  /** 6 x u8: how each argument is read, a {@link BROKER_ARG} value. */
  kinds: 56,
  /**
   * u16: how many {@link BROKER_PATCH} entries start the data: values inside
   * the message (a msghdr's pointers, a cmsg's descriptors) read as arguments
   * are, in place.
   */
  patches: 62,
  /** u64: {@link BROKER_RETURNS_FD}. */
  flags: 64,
  /** The patch table, then paths, structs and output buffers the arguments point into. */
  data: 72,
} as const;
/** How a broker request's argument is read. */
export const BROKER_ARG = {
  /** Passed as it is. */
  literal: 0,
  /** An index into the descriptors the request brought: that descriptor. */
  fd: 1,
  /** An offset into the request message: the address of that byte in the reaper. */
  data: 2,
} as const;
/**
 * One entry of a request's patch table: `at` (u32), an offset into the
 * message where 8 bytes lie, and `kind` (u32): {@link BROKER_ARG}.fd, the u32
 * there is an index into the descriptors the request brought, replaced by
 * that descriptor; {@link BROKER_ARG}.data, the u64 there is an offset into
 * the message, replaced by its address.
 */
export const BROKER_PATCH = { at: 0, kind: 4, size: 8 } as const;
/** Request flag: the result is a descriptor to send back. */
export const BROKER_RETURNS_FD = 1;
/** The longest broker request (and reply). */
export const BROKER_REQUEST_MAX = 8192;
/**
 * The most descriptors one broker request may bring: as many as one
 * message may carry (SCM_MAX_FD, include/net/scm.h; scm_fp_copy() counts
 * every SCM_RIGHTS record of the message together).
 */
export const BROKER_MAX_FDS = FDS_PER_MESSAGE_MAX;

/**
 * Byte offsets in the broker block (in the script data) a ReaperParams block
 * points at: what the reaper's recvmsg and sendmsg use, filled in by the
 * encoder but for the fields the reaper sets per request (see asm/*.S). The
 * request buffer comes last, so a syscall that writes past the request's
 * data cannot reach the reaper's own state; the fields the code reaches
 * from it lie within 256 bytes before it (aarch64's ldur/stur).
 */
export const BROKER_BLOCK = {
  /** Room for one SCM_RIGHTS record of BROKER_MAX_FDS descriptors (CMSG_SPACE(4 * 253)). */
  recvControl: 0,
  /** struct msghdr for recvmsg: iov -> recvIov, control -> recvControl. */
  recvMsg: 1032,
  /** struct msghdr for sendmsg: iov -> sendIov, control -> sendControl. */
  sendMsg: 1088,
  /** struct iovec { request, BROKER_REQUEST_MAX }. */
  recvIov: 1144,
  /** struct iovec { request, the length of the message received }. */
  sendIov: 1160,
  /** One SCM_RIGHTS record of one descriptor (CMSG_SPACE(4)), its fd at sendFd. */
  sendControl: 1176,
  sendFd: 1192,
  /** nr and 6 arguments as the syscall gets them. */
  call: 1200,
  /** The message, BROKER_REQUEST_MAX bytes. */
  request: 1256,
} as const;
/** Size of the broker block, its request buffer included. */
export const BROKER_BLOCK_SIZE = BROKER_BLOCK.request + BROKER_REQUEST_MAX;
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
  /**
   * Address of a ZygoteParams block ({@link ZYGOTE_PARAMS_SIZE} bytes in this
   * script's data, see {@link ZYGOTE_PARAM}): the step forks and its child
   * becomes the zygote ({@link STEP_FORK_ZYGOTE}). Excludes `expect` and `reaper`.
   */
  zygote?: bigint;
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

  /**
   * Copies `data` over bytes already placed at `address` (as reserved by
   * `zeros`): for structs that hold their own address or that of data placed
   * after them.
   */
  fill(address: bigint, data: Uint8Array): void {
    if (!this.#inData(address, data.length)) {
      throw new RangeError(
        `sandlock: ${data.length} bytes at 0x${address.toString(16)} are not in this script's data`,
      );
    }
    this.#chunks.push({ offset: Number(address - this.dataBase), bytes: Uint8Array.from(data) });
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
    if (step.zygote !== undefined) {
      if (step.expect !== undefined || step.reaper !== undefined) {
        throw new TypeError(
          `sandlock: ${where} has zygote with expect or reaper; they share a field`,
        );
      }
      if (!this.#inData(step.zygote, ZYGOTE_PARAMS_SIZE)) {
        throw new RangeError(
          `sandlock: ${where} has its zygote parameters at 0x${step.zygote.toString(16)}, outside this script's data`,
        );
      }
      flags |= BigInt(STEP_FORK_ZYGOTE);
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
        toU64(step.reaper ?? step.zygote ?? step.expect ?? 0, `${where} expected result`),
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
