// getdents64 / getdents of a directory the layer changed: the merged
// listing (the upper's names, then the lower's the layer neither shadows nor
// hides), served by @sandlock/procfs's ListingCache (offsets, telldir,
// rewinds as the kernel's). A directory the layer has not touched is the
// kernel's to list.
import { fstatSync } from 'node:fs';
import { type Answer, answer } from '@sandlock/dispatch/module';
import { type DirEntry, ListingCache, parseDirent64, sortEntries } from '@sandlock/procfs';
import {
  close,
  encodeOpenHow,
  hostArch,
  openFlags,
  RESOLVE_BENEATH,
  RESOLVE_NO_SYMLINKS,
  trySyscall,
} from '@sandlock/sys';
import { type Ctx, int, type Session, sessionOf } from '../call.js';
import { placeOf } from '../resolve.js';

const O = openFlags(hostArch());
const cache = new ListingCache();
const BENEATH = encodeOpenHow({
  flags: BigInt(O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC),
  resolve: BigInt(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS),
});

/** A directory beneath a root by its relative path (no symlink, nothing above the root), opened for listing; -errno. */
function openBeneath(root: number, rel: string): number {
  return trySyscall(
    'openat2',
    root,
    Buffer.from(`${rel === '' ? '.' : rel}\0`, 'latin1'),
    BENEATH,
    BENEATH.length,
  );
}

function entriesOf(fd: number): DirEntry[] | number {
  const buffer = Buffer.alloc(64 * 1024);
  const entries: DirEntry[] = [];
  for (;;) {
    const length = trySyscall('getdents64', fd, buffer, buffer.length);
    if (length < 0) return length;
    if (length === 0) return entries;
    entries.push(...parseDirent64(buffer, length));
  }
}

const DOTS = new Set(['.', '..']);

export function onListing(ctx: Ctx): Answer {
  const session = sessionOf(ctx);
  const fd = int(ctx.args[0]);
  // A bad fd: getFd throws CallError(EBADF), the kernel's answer.
  const dup = ctx.getFd(fd);
  try {
    const stat = fstatSync(dup, { bigint: true });
    if (!stat.isDirectory()) return answer.continue();
    const place = placeOf(session.workdir, dup);
    if (place === null) return answer.continue();
    const rel = place.rel.join('/');
    const workdir = session.workdir;
    const upper = place.side === 'upper' ? -1 : openBeneath(workdir.upperRoot, rel);
    const changed = place.side === 'upper' || (upper >= 0 && (rel !== '' || session.changed));
    if (!changed) {
      if (upper >= 0) close(upper);
      return answer.continue();
    }
    if (ListingCache.readableFlags(dup) === null) {
      if (upper >= 0) close(upper);
      return answer.continue(); // O_PATH: the kernel's EBADF
    }
    try {
      return cache.serve(ctx, { fd, dup, stat }, (own) =>
        merge(session, rel, place.side, own, upper),
      );
    } finally {
      if (upper >= 0) close(upper);
    }
  } finally {
    close(dup);
  }
}

/** The merged entries, from the listing of one side (`own`) and the other side's. */
function merge(
  session: Session,
  rel: string,
  side: 'upper' | 'lower',
  own: DirEntry[],
  upperFd: number,
): DirEntry[] {
  const workdir = session.workdir;
  const layer = workdir.layer;
  const childOf = (name: string) => (rel === '' ? name : `${rel}/${name}`);
  let upperEntries: DirEntry[];
  let lowerEntries: DirEntry[];
  if (side === 'upper') {
    upperEntries = own;
    const lower = rel !== '' && layer.hidden(rel) ? -1 : openBeneath(workdir.lowerRoot, rel);
    const listed = lower >= 0 ? entriesOf(lower) : [];
    if (lower >= 0) close(lower);
    lowerEntries = typeof listed === 'number' ? [] : listed;
  } else {
    lowerEntries = own;
    const listed = upperFd >= 0 ? entriesOf(upperFd) : [];
    upperEntries = typeof listed === 'number' ? [] : listed;
  }
  const names = new Set<string>();
  const out: DirEntry[] = [];
  const dots = (side === 'upper' ? upperEntries : lowerEntries).filter((entry) =>
    DOTS.has(entry.name.toString('latin1')),
  );
  out.push(...dots);
  for (const entry of upperEntries) {
    const name = entry.name.toString('latin1');
    if (DOTS.has(name)) continue;
    names.add(name);
    out.push(entry);
  }
  for (const entry of lowerEntries) {
    const name = entry.name.toString('latin1');
    if (DOTS.has(name) || names.has(name) || layer.hidden(childOf(name))) continue;
    out.push(entry);
  }
  return session.deterministic ? sortEntries(out) : out;
}

export function forgetListings(sessionId: number): void {
  cache.forgetSession(sessionId);
}
