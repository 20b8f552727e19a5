// The whiteout log: one JSON object per line, appended, replayed in order.
// What it hides only grows (there is no "undelete": an upper entry created
// later is seen through the upper, the layer's first), so the in-memory state
// is two sets, and a descriptor opened O_APPEND lets every Layer instance of
// one layer (one per thread) catch up with lines the others appended.

import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

export interface WhiteoutRecord {
  readonly op: 'delete' | 'opaque';
  readonly path: string;
}

/** A path relative to the layer's directory: no `.`, `..`, empty or trailing components. */
export function normalizedRel(rel: string): boolean {
  if (rel === '') return false;
  if (rel.startsWith('/') || rel.includes('\0')) return false;
  return rel.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

export class Whiteouts {
  /** Paths deleted from the lower: they and everything beneath. */
  readonly deleted = new Set<string>();
  /** Directories of the upper beneath which nothing of the lower is seen. */
  readonly opaque = new Set<string>();
  /** Every record, in order. */
  readonly records: WhiteoutRecord[] = [];
  private readonly fd: number;
  private consumed = 0;
  private partial = '';

  constructor(path: string) {
    this.fd = openSync(path, 'a+', 0o600);
    this.refresh();
  }

  /** Reads lines other instances appended since. */
  refresh(): void {
    const size = fstatSync(this.fd).size;
    if (size === this.consumed) return;
    const buffer = Buffer.alloc(size - this.consumed);
    let read = 0;
    while (read < buffer.length) {
      const got = readSync(this.fd, buffer, read, buffer.length - read, this.consumed + read);
      if (got === 0) break;
      read += got;
    }
    this.consumed += read;
    const lines = (this.partial + buffer.subarray(0, read).toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line !== '') this.apply(parseRecord(line));
    }
  }

  append(record: WhiteoutRecord): void {
    if (!normalizedRel(record.path)) {
      throw new Error(`sandlock: not a normalized relative path: ${JSON.stringify(record.path)}`);
    }
    this.refresh();
    // One write of a whole line to an O_APPEND descriptor: lines of several
    // writers never interleave (write(2): the seek and the write are atomic).
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    const written = writeSync(this.fd, line);
    if (written !== line.length) throw new Error('sandlock: short write to the whiteout log');
    this.consumed += written;
    this.apply(record);
  }

  /** Whether the lower's entry at `rel` is invisible. */
  hidden(rel: string): boolean {
    this.refresh();
    if (this.deleted.size === 0 && this.opaque.size === 0) return false;
    if (this.deleted.has(rel)) return true;
    for (let slash = rel.lastIndexOf('/'); slash > 0; slash = rel.lastIndexOf('/', slash - 1)) {
      const above = rel.slice(0, slash);
      if (this.deleted.has(above) || this.opaque.has(above)) return true;
    }
    return false;
  }

  close(): void {
    closeSync(this.fd);
  }

  private apply(record: WhiteoutRecord): void {
    this.records.push(record);
    (record.op === 'delete' ? this.deleted : this.opaque).add(record.path);
  }
}

function parseRecord(line: string): WhiteoutRecord {
  const value = JSON.parse(line) as { op?: unknown; path?: unknown };
  if ((value.op !== 'delete' && value.op !== 'opaque') || typeof value.path !== 'string') {
    throw new Error(`sandlock: a bad line in the whiteout log: ${line}`);
  }
  if (!normalizedRel(value.path)) {
    throw new Error(`sandlock: a bad path in the whiteout log: ${line}`);
  }
  return { op: value.op, path: value.path };
}
