// The synthetic contents, as pure functions of the real ones: no I/O here, so
// they are tested without a sandbox.

import type { ModulePolicy } from '@sandlock/policy';

/** struct utsname on Linux: six fields of __NEW_UTS_LEN + 1 = 65 bytes. */
export const UTS_FIELD = 65;
export const UTSNAME_SIZE = 6 * UTS_FIELD;
const NODENAME_OFFSET = UTS_FIELD;

/**
 * The files directly in /proc that this package's modules make up for a
 * policy: /proc/loadavg, /proc/locks and the /proc/sysvipc directory whenever
 * proc-pids and proc-host are on, /proc/cpuinfo
 * and /proc/stat with `numCpus`, /proc/meminfo with `maxMemory`. The modules
 * serve them without Landlock (a sealed memfd injected), so a sandbox that
 * hides processes gets no Landlock rule on the real ones: a thread that swaps
 * an approved path for one of them between the check and the kernel's open
 * is refused, and never reads the host's.
 */
export function madeUpProcFiles(policy: ModulePolicy): string[] {
  const files: string[] = [];
  if (policy.procReadable) files.push('/proc/loadavg', '/proc/locks', '/proc/sysvipc');
  if (policy.numCpus !== null) files.push('/proc/cpuinfo', '/proc/stat');
  if (policy.maxMemory !== null) files.push('/proc/meminfo');
  return files;
}

/** Whether `name` is `host` or one of its qualified names (`host.example.org`), case-insensitively. */
function namesHost(name: string, host: string): boolean {
  const lower = name.toLowerCase();
  const h = host.toLowerCase();
  return lower === h || lower.startsWith(`${h}.`);
}

/**
 * /etc/hosts for a sandbox named `virtual` that reaches the `pinned` host
 * names at the addresses they resolved to when it started: the real file
 * without the real host name (`real`, and its qualified names; only when
 * `virtual` is given) and without the pinned names in any line's names; a
 * line left with no name is dropped; other lines are kept as they are. Then
 * `127.0.1.1\t<virtual>` (Debian's convention for the machine's own name),
 * and a line per pinned address.
 */
export function hostsWith(
  realHosts: string,
  real: string,
  virtual: string | null,
  pinned: Readonly<Record<string, readonly string[]>> = {},
): string {
  const pinnedNames = new Set(Object.keys(pinned).map((name) => name.toLowerCase()));
  const replaced = (name: string) =>
    (virtual !== null && namesHost(name, real)) || pinnedNames.has(name.toLowerCase());
  const lines: string[] = [];
  for (const line of realHosts.split('\n')) {
    const hash = line.indexOf('#');
    const data = hash < 0 ? line : line.slice(0, hash);
    const fields = data
      .trim()
      .split(/\s+/)
      .filter((field) => field !== '');
    if (fields.length < 2 || !fields.slice(1).some(replaced)) {
      lines.push(line);
      continue;
    }
    const names = fields.slice(1).filter((name) => !replaced(name));
    if (names.length > 0) lines.push([fields[0], ...names].join('\t'));
  }
  let text = lines.join('\n');
  if (text !== '' && !text.endsWith('\n')) text += '\n';
  if (virtual !== null) text += `127.0.1.1\t${virtual}\n`;
  for (const [name, addresses] of Object.entries(pinned)) {
    for (const address of addresses) text += `${address}\t${name}\n`;
  }
  return text;
}

/**
 * A copy of the real `struct utsname` with `nodename` replaced by `hostname`
 * (its UTF-8 bytes, cut at 64 so a NUL always ends it, as the kernel keeps it).
 */
export function utsnameWith(real: Buffer, hostname: string): Buffer {
  if (real.length !== UTSNAME_SIZE) {
    throw new RangeError(`sandlock: struct utsname is ${UTSNAME_SIZE} bytes, got ${real.length}`);
  }
  const copy = Buffer.from(real);
  copy.fill(0, NODENAME_OFFSET, NODENAME_OFFSET + UTS_FIELD);
  Buffer.from(hostname, 'utf8').copy(copy, NODENAME_OFFSET, 0, UTS_FIELD - 1);
  return copy;
}

/** The field `index` (0 sysname … 5 domainname) of a struct utsname, as text. */
export function utsField(buffer: Buffer, index: number): string {
  const field = buffer.subarray(index * UTS_FIELD, (index + 1) * UTS_FIELD);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** The contents of /etc/hostname. */
export function hostnameFile(hostname: string): string {
  return `${hostname}\n`;
}

/** A CPU list in the kernel's format (/sys/devices/system/cpu/online): `0-3\n`, `0\n`. */
export function cpuList(count: number): string {
  return count === 1 ? '0\n' : `0-${count - 1}\n`;
}

/**
 * /proc/cpuinfo with `count` processors: the real first processor block,
 * repeated, with `processor`, `core id`, `apicid` and `initial apicid`
 * renumbered and `siblings` and `cpu cores` set to `count` (one package of
 * `count` cores, one thread each). Lines before the first block (s390's
 * header) and after the last (aarch64 has none; some arches have a trailer)
 * are kept.
 */
export function cpuinfoWith(real: string, count: number): string {
  const blocks = real.split(/\n\n+/);
  const first = blocks.findIndex((block) => /^processor\s*:/m.test(block));
  if (first < 0) {
    // No processor blocks at all (an unknown layout): the reference's minimum.
    return Array.from({ length: count }, (_, i) => `processor\t: ${i}\n`).join('\n');
  }
  let last = first;
  while (last + 1 < blocks.length && /^processor\s*:/m.test(blocks[last + 1]!)) last++;
  const template = blocks[first]!;
  const set = (block: string, key: string, value: number) =>
    block.replace(new RegExp(`^(${key}\\s*:).*$`, 'm'), `$1 ${value}`);
  const made: string[] = [];
  for (let i = 0; i < count; i++) {
    let block = set(template, 'processor', i);
    block = set(block, 'core id', i);
    block = set(block, 'apicid', i);
    block = set(block, 'initial apicid', i);
    block = set(block, 'siblings', count);
    block = set(block, 'cpu cores', count);
    made.push(block);
  }
  const before = blocks.slice(0, first).filter((block) => block.trim() !== '');
  const after = blocks.slice(last + 1).filter((block) => block.trim() !== '');
  return `${[...before, ...made, ...after].join('\n\n')}\n\n`;
}

/**
 * /proc/stat with `count` CPUs: the aggregate `cpu` line and every other line
 * as they are, the per-CPU lines `cpuK …` cut to the first `count` (or
 * repeated, renumbered, when `count` is more than the host has). Node's
 * os.cpus() counts these lines.
 */
export function procStatWith(real: string, count: number): string {
  const lines = real.split('\n');
  const perCpu = lines.filter((line) => /^cpu\d+ /.test(line));
  if (perCpu.length === 0) return real;
  const made = Array.from({ length: count }, (_, i) =>
    perCpu[i % perCpu.length]!.replace(/^cpu\d+/, `cpu${i}`),
  );
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    if (/^cpu\d+ /.test(line)) {
      if (!placed) out.push(...made);
      placed = true;
    } else {
      out.push(line);
    }
  }
  return out.join('\n');
}

/** The size of the kernel's CPU mask for `count` CPUs: whole longs. */
export function maskBytesFor(count: number): number {
  return Math.ceil(count / 64) * 8;
}

/**
 * What the raw sched_getaffinity(pid, len, mask) system call does for a
 * sandbox of `count` CPUs on a kernel whose mask is `kernelMaskBytes` long
 * and that has `nrCpuIds` possible CPUs (kernel/sched/core.c): EINVAL when
 * `len` is not a multiple of sizeof(long) or too short for every CPU id (the
 * virtual ones included); else the mask of CPUs 0…count-1, `min(len, mask
 * size)` bytes of it, and that length as the return value.
 */
export function affinityReply(
  count: number,
  len: bigint,
  kernelMaskBytes: number,
  nrCpuIds: number,
): { errno: 'EINVAL' } | { mask: Buffer } {
  const ids = Math.max(nrCpuIds, count);
  if (len % 8n !== 0n || len * 8n < BigInt(ids)) return { errno: 'EINVAL' };
  const size = Math.max(kernelMaskBytes, maskBytesFor(ids));
  const bytes = Number(len < BigInt(size) ? len : BigInt(size));
  const mask = Buffer.alloc(bytes);
  for (let cpu = 0; cpu < count; cpu++) mask[cpu >> 3]! |= 1 << (cpu & 7);
  return { mask };
}

/**
 * What one process of the sandbox counts for, in bytes, from its
 * /proc/PID/status: the figure @sandlock/resource's memory limit sums
 * (`procMemoryReader.estimate`).
 */
export { statusMemory } from '@sandlock/sys';

/** The /proc/meminfo lines given a value of their own (in kB); the others are 0. */
const MEMINFO_KEPT = new Set(['VmallocTotal', 'Hugepagesize']);

/**
 * /proc/meminfo for a sandbox of `limit` bytes that uses `used` bytes: the
 * real file's lines, in its order and layout, with `MemTotal` = the limit,
 * `MemFree` and `MemAvailable` = limit − used (at least 0), the use shown as
 * anonymous memory (`AnonPages`, `Active`, `Active(anon)`, `Committed_AS`),
 * `CommitLimit` = the limit; `VmallocTotal` and `Hugepagesize` (sizes, not
 * amounts of memory) cut to the limit; every other value 0 (caches, swap,
 * kernel memory, huge page counts): nothing is larger than `MemTotal`, and
 * `free`'s arithmetic (used = total − free − buffers − cache) comes out as
 * the use. Values are whole kB (the limit rounded down, the use up). Of
 * MemTotal, MemFree and MemAvailable, a line the real file lacks is added at
 * the top.
 */
export function meminfoWith(real: string, limit: number, used: number): string {
  const total = Math.floor(limit / 1024);
  const use = Math.min(total, Math.ceil(Math.max(0, used) / 1024));
  const free = total - use;
  const values = new Map<string, number>([
    ['MemTotal', total],
    ['MemFree', free],
    ['MemAvailable', free],
    ['AnonPages', use],
    ['Active', use],
    ['Active(anon)', use],
    ['Committed_AS', use],
    ['CommitLimit', total],
  ]);
  const seen = new Set<string>();
  const lines = real.split('\n').map((line) => {
    const match = /^([^:\s]+):(\s*)(\d+)(.*)$/.exec(line);
    if (match === null) return line;
    const [, name, space, digits, rest] = match as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    seen.add(name);
    let value = values.get(name);
    if (value === undefined) value = MEMINFO_KEPT.has(name) ? Math.min(Number(digits), total) : 0;
    const text = String(value);
    // Right-aligned in the real field's width, as the kernel prints it.
    const pad = Math.max(1, space.length + digits.length - text.length);
    return `${name}:${' '.repeat(pad)}${text}${rest}`;
  });
  const missing = ['MemTotal', 'MemFree', 'MemAvailable']
    .filter((name) => !seen.has(name))
    .map((name) => `${`${name}:`.padEnd(16)}${String(values.get(name)).padStart(8)} kB`);
  return [...missing, ...lines].join('\n');
}
