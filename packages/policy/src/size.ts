const KIB = 1024;

// Binary multiples only. "MB" is read as MiB, as Docker (`-m 512mb`) and
// systemd do: a memory limit in powers of 1000 is almost never meant.
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: KIB,
  kb: KIB,
  kib: KIB,
  m: KIB ** 2,
  mb: KIB ** 2,
  mib: KIB ** 2,
  g: KIB ** 3,
  gb: KIB ** 3,
  gib: KIB ** 3,
  t: KIB ** 4,
  tb: KIB ** 4,
  tib: KIB ** 4,
};

const SIZE = /^(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)$/i;

const EXPECTED =
  'expected a number of bytes with an optional unit K, M, G or T (or KiB, MiB, GiB, TiB), such as 512M or 1.5G';

/**
 * Parses a byte size: `"4096"`, `"512K"`, `"512M"`, `"1.5G"`, `"2GiB"`, `"1t"`.
 * Units are binary (K = 1024) and case-insensitive; `B` and the `KB`/`MB`/…
 * spellings are accepted with the same binary meaning. Fractions are allowed
 * with a unit and rounded down to a whole byte. A number is taken as bytes
 * and must be a non-negative safe integer.
 *
 * @throws RangeError naming the input when it is not a size.
 */
export function parseByteSize(input: string | number): number {
  if (typeof input === 'number') {
    if (Number.isSafeInteger(input) && input >= 0) return input;
    throw new RangeError(`invalid byte size ${input}: expected a whole number of bytes`);
  }
  if (typeof input !== 'string') {
    throw new RangeError(`invalid byte size ${String(input)}: ${EXPECTED}`);
  }
  const text = input.trim();
  const quoted = JSON.stringify(input);
  if (text === '') throw new RangeError(`invalid byte size ${quoted}: empty; ${EXPECTED}`);
  const match = SIZE.exec(text);
  if (!match) throw new RangeError(`invalid byte size ${quoted}: ${EXPECTED}`);
  const [, amount, unit] = match as unknown as [string, string, string];
  const multiplier = UNITS[unit.toLowerCase()];
  if (multiplier === undefined) {
    throw new RangeError(`invalid byte size ${quoted}: unknown unit "${unit}"; ${EXPECTED}`);
  }
  const value = Number(amount);
  if (multiplier === 1 && !Number.isInteger(value)) {
    throw new RangeError(`invalid byte size ${quoted}: a fraction of a byte; ${EXPECTED}`);
  }
  const bytes = Math.floor(value * multiplier);
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(`invalid byte size ${quoted}: too large (at most 8 PiB)`);
  }
  return bytes;
}

/** `268435456` → `"256 MiB"`, `1610612736` → `"1.5 GiB"`: for messages. */
export function formatByteSize(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let index = 0;
  while (Math.abs(value) >= KIB && index < units.length - 1) {
    value /= KIB;
    index += 1;
  }
  if (index === 0) return `${bytes} bytes`;
  const text = value.toFixed(1).replace(/\.0$/, '');
  return `${text} ${units[index]}`;
}
