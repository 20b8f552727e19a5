/**
 * Throws a RangeError unless `size` bytes from `offset` lie inside `buf`. Checking up front keeps
 * an encoder from writing half a struct before Buffer notices the end.
 */
export function assertFits(buf: Uint8Array, offset: number, size: number, what: string): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + size > buf.length) {
    throw new RangeError(
      `${what} needs ${size} bytes at offset ${offset}, but the buffer holds ${buf.length}`,
    );
  }
}

/**
 * Checks that a struct fits at `offset` and zero-fills its bytes, so padding and fields an
 * encoder leaves out never carry stale data into the kernel.
 */
export function zeroStruct(buf: Buffer, offset: number, size: number, what: string): void {
  assertFits(buf, offset, size, what);
  buf.fill(0, offset, offset + size);
}

/** Encodes one struct into a fresh buffer of exactly its size. */
export function encodeWith<T>(
  size: number,
  encodeInto: (buf: Buffer, offset: number, value: T) => void,
  value: T,
): Buffer {
  const buf = Buffer.alloc(size);
  encodeInto(buf, 0, value);
  return buf;
}

/** Encodes a C array of structs back to back. */
export function encodeArrayWith<T>(
  size: number,
  encodeInto: (buf: Buffer, offset: number, value: T) => void,
  values: readonly T[],
): Buffer {
  const buf = Buffer.alloc(size * values.length);
  values.forEach((value, index) => {
    encodeInto(buf, index * size, value);
  });
  return buf;
}

/** Decodes `count` structs laid out back to back from `offset`. */
export function decodeArrayWith<T>(
  size: number,
  decode: (buf: Buffer, offset: number) => T,
  buf: Buffer,
  offset: number,
  count: number,
  what: string,
): T[] {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`${what} count must be a non-negative integer, got ${count}`);
  }
  assertFits(buf, offset, size * count, `${count} × ${what}`);
  return Array.from({ length: count }, (_, index) => decode(buf, offset + index * size));
}
