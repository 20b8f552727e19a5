// The byte streams of a seeded sandbox. Every stream has a name (the
// process's place in the process tree and what it reads: "0.1/getrandom",
// "0/urandom#2") and is the ChaCha20 keystream under
// key = SHA-256(seed as 8 little-endian bytes || name), so a stream depends on
// the seed and its name only, never on what other streams consumed.
import { type Cipher, createCipheriv, createHash } from 'node:crypto';

/** The bytes of one ChaCha20 block: the keystream is made 64 bytes at a time. */
export const CHACHA_BLOCK = 64;
/** Zeros to encrypt for requests up to this size (a keystream is the encryption of zeros). */
const ZEROS = Buffer.alloc(64 * 1024);

/** The 32-byte ChaCha20 key of the stream `name` under `seed` (a u64). */
export function streamKey(seed: bigint, name: string): Buffer {
  const seedBytes = Buffer.alloc(8);
  seedBytes.writeBigUInt64LE(BigInt.asUintN(64, seed));
  return createHash('sha256').update(seedBytes).update(name, 'utf8').digest();
}

/** One stream: successive `take`s return successive bytes of the keystream. */
export class Keystream {
  private readonly cipher: Cipher;

  /** From the stream's start, or from its block `fromBlock` (its byte `fromBlock * 64`). */
  constructor(key: Buffer, fromBlock = 0) {
    // OpenSSL's chacha20 IV: a 32-bit little-endian block counter, then a 96-bit nonce (zero).
    const iv = Buffer.alloc(16);
    iv.writeUInt32LE(fromBlock, 0);
    this.cipher = createCipheriv('chacha20', key, iv);
  }

  static named(seed: bigint, name: string): Keystream {
    return new Keystream(streamKey(seed, name));
  }

  /** The next `length` bytes of the stream. */
  take(length: number): Buffer {
    if (length <= ZEROS.length) return this.cipher.update(ZEROS.subarray(0, length));
    return this.cipher.update(Buffer.alloc(length));
  }
}

/** The stream a process's getrandom(2) calls read. */
export function getrandomStream(label: string): string {
  return `${label}/getrandom`;
}

/** The 16 bytes of a process's `index`-th open of /proc/sys/kernel/random/uuid (from 0). */
export function uuidStream(label: string, index: number): string {
  return `${label}/uuid#${index}`;
}

/** The 16 bytes of the sandbox's /proc/sys/kernel/random/boot_id: one for every process. */
export const BOOT_ID_STREAM = 'boot_id';

/**
 * A random UUID's text as the kernel prints it (version 4, variant 10:
 * generate_random_uuid() in lib/uuid.c), with its newline.
 */
export function uuidText(bytes: Buffer): string {
  const b = Buffer.from(bytes.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}\n`;
}

/** The stream behind a process's `index`-th open of /dev/urandom or /dev/random (from 0). */
export function deviceStream(label: string, index: number): string {
  return `${label}/urandom#${index}`;
}
