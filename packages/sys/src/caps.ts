// The calling thread's capability sets (capget/capset act on one thread:
// capabilities(7), "Thread capability sets"), for a supervisor that must do
// an on-behalf call with no more capabilities than the sandboxed caller has.
import { LINUX_CAPABILITY_VERSION_3 } from './constants.js';
import { rawSyscall } from './libc.js';
import { hostArch, syscallNumber } from './syscalls/index.js';

export interface CapabilitySets {
  readonly effective: bigint;
  readonly permitted: bigint;
  readonly inheritable: bigint;
}

const header = Buffer.alloc(8);
const data = Buffer.alloc(24);

function call(name: 'capget' | 'capset'): number {
  header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  header.writeInt32LE(0, 4); // this thread
  return rawSyscall(syscallNumber(name, hostArch()), header, data);
}

/** A set as the two 32-bit words of struct __user_cap_data_struct[2]. */
function word(set: bigint, half: 0 | 1): number {
  return Number((set >> BigInt(32 * half)) & 0xffffffffn);
}

/** The calling thread's effective, permitted and inheritable sets; throws on failure. */
export function threadCapabilities(): CapabilitySets {
  const result = call('capget');
  if (result < 0) throw new Error(`sandlock: capget failed: errno ${-result}`);
  const set = (offset: number) =>
    BigInt(data.readUInt32LE(offset)) | (BigInt(data.readUInt32LE(offset + 12)) << 32n);
  return { effective: set(0), permitted: set(4), inheritable: set(8) };
}

/**
 * Sets the calling thread's capability sets (an effective set within the
 * permitted one needs no privilege); returns 0 or -errno.
 */
export function setThreadCapabilities(sets: CapabilitySets): number {
  for (const half of [0, 1] as const) {
    const at = half * 12;
    data.writeUInt32LE(word(sets.effective, half), at);
    data.writeUInt32LE(word(sets.permitted, half), at + 4);
    data.writeUInt32LE(word(sets.inheritable, half), at + 8);
  }
  return call('capset');
}
