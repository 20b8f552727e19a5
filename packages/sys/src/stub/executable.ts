import {
  chmodSync,
  closeSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import {
  F_ADD_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
} from '../constants.js';
import { SysError } from '../errors.js';
import { fcntl, memfdCreate } from '../libc.js';
import type { Arch } from '../syscalls/index.js';
import { buildStubElf } from './elf.js';

/** Where the exec stub lives: a sealed memfd (preferred) or a cached file. */
export type StubExecutable = { kind: 'memfd'; fd: number } | { kind: 'file'; path: string };

const cache = new Map<Arch, StubExecutable>();

function memfdExecRefused(): boolean {
  // vm.memfd_noexec=2 forbids executable memfds for this pid namespace and
  // its children (Documentation/admin-guide/sysctl/vm.rst, Linux 6.3+).
  try {
    return readFileSync('/proc/sys/vm/memfd_noexec', 'utf8').trim() === '2';
  } catch {
    return false;
  }
}

function createStubMemfd(elf: Buffer): number {
  let fd: number;
  try {
    fd = memfdCreate('sandlock-stub', MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  } catch (error) {
    // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable.
    if (!(error instanceof SysError) || error.code !== 'EINVAL') throw error;
    fd = memfdCreate('sandlock-stub', MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }
  writeSync(fd, elf);
  // Sealed, nobody can rewrite the code every sandbox starts with.
  fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
  return fd;
}

/**
 * A 64-bit FNV-1a hash: enough to tell stub versions apart in a file name
 * (the content is compared byte for byte before reuse), and it spares every
 * process the load of node:crypto.
 */
function fnv1a64(bytes: Uint8Array): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  return hash;
}

function stubCacheDir(): string {
  const runtime = process.env.XDG_RUNTIME_DIR;
  if (runtime) return join(runtime, 'sandlock');
  const cacheHome = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  if (cacheHome) return join(cacheHome, 'sandlock');
  return join(tmpdir(), `sandlock-${userInfo().uid}`);
}

function writeStubFile(arch: Arch, elf: Buffer): string {
  const dir = stubCacheDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const owner = statSync(dir);
  if (owner.uid !== process.getuid?.() || (owner.mode & 0o022) !== 0) {
    throw new Error(`sandlock: stub cache directory ${dir} is not private to this user`);
  }
  const digest = fnv1a64(elf).toString(16).padStart(16, '0');
  const path = join(dir, `exec-stub-${arch}-${digest}`);
  try {
    if (readFileSync(path).equals(elf)) return path;
  } catch {
    // Not there yet.
  }
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, elf, { mode: 0o500 });
    chmodSync(temporary, 0o500);
    renameSync(temporary, path);
  } catch (error) {
    // A full disk leaves a partial file behind: never one a later launch could run.
    rmSync(temporary, { force: true });
    const { code, errno } = error as NodeJS.ErrnoException;
    throw Object.assign(
      new Error(`cannot write the exec stub to ${temporary}: ${(error as Error).message}`, {
        cause: error,
      }),
      { code, errno },
    );
  }
  return path;
}

/**
 * The exec stub for `arch`, created once per process. `SANDLOCK_STUB=file`
 * forces the cached-file form (as used when exec from a memfd is refused).
 */
export function stubExecutable(arch: Arch): StubExecutable {
  const known = cache.get(arch);
  if (known) return known;
  const elf = buildStubElf(arch);
  let executable: StubExecutable;
  if (process.env.SANDLOCK_STUB !== 'file' && !memfdExecRefused()) {
    executable = { kind: 'memfd', fd: createStubMemfd(elf) };
  } else {
    executable = { kind: 'file', path: writeStubFile(arch, elf) };
  }
  cache.set(arch, executable);
  return executable;
}

/** Forgets the cached stub (closing a memfd); the next launch creates it again. */
export function resetStubExecutable(arch: Arch): void {
  const known = cache.get(arch);
  if (known?.kind === 'memfd') closeSync(known.fd);
  cache.delete(arch);
}
