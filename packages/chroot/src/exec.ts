// A program found inside the root, made ready for execveat(fd, "",
// AT_EMPTY_PATH): the kernel takes an ELF's interpreter (PT_INTERP) and a
// script's `#!` line by path from the process's root, which is the host's,
// so both are found inside the root here instead. An ELF with an
// interpreter runs from a sealed memfd copy whose PT_INTERP names
// `/proc/self/fd/I`, I the interpreter's descriptor in the process: the
// kernel opens the interpreter (load_elf_binary() in fs/binfmt_elf.c)
// before it closes the close-on-exec descriptors (begin_new_exec()), so I
// may be close-on-exec and nothing stays open in the program. A script
// runs as its interpreter with the script's path inside the root after it,
// as binfmt_script would have run it.
import { fchmodSync, fchownSync, fstatSync, readSync } from 'node:fs';
import {
  AT_EACCESS,
  AT_EMPTY_PATH,
  close,
  ERRNO,
  hostArch,
  noAccessReopen,
  openFlags,
  readOnlyReopen,
  sealedMemfd,
  trySyscall,
} from '@sandlock/sys';
import { components, type Root } from './root.js';

const O = openFlags(hostArch());
const X_OK = 1;
/** BINPRM_BUF_SIZE (include/linux/binfmts.h): how much of a `#!` line the kernel reads. */
const SHEBANG_MAX = 256;
/** The kernel's nesting limit: a program at depth 5 runs, at 6 ELOOP (exec_binprm(), fs/exec.c: five scripts). */
export const MAX_DEPTH = 5;
const PT_INTERP = 3;

/**
 * Patched copies made, by the file's device, inode, times and size and the
 * interpreter's descriptor number: sealed, so one serves every start of the
 * same program (a copy of python3, 6.8 MB, was measured at 16 ms at best).
 */
const patched = new Map<string, number>();
const PATCHED_MAX = 16;

function remember(key: string, memfd: number): void {
  if (patched.size >= PATCHED_MAX) {
    const [oldest, fd] = patched.entries().next().value as [string, number];
    patched.delete(oldest);
    close(fd);
  }
  patched.set(key, memfd);
}

/** A program found inside the root. */
export interface ExecFile {
  /** The arguments the program gets (a script's interpreter and the script's path first). */
  readonly argv: string[];
  /** The program's path inside the root (what /proc/self/exe shows). */
  readonly virtual: string;
  /** The program's descriptor in this process (the ELF found, close-on-exec). */
  readonly fd: number;
  /** Its interpreter's (PT_INTERP) descriptor in this process, or null. */
  readonly interpreterFd: number | null;
  /** The descriptor to execute, given the interpreter's number in the process: the file, or its patched copy. */
  file(interpreterChildFd: number | null): number;
  /** Closes what this process opened for it. */
  close(): void;
}

export class ExecError extends Error {
  override readonly name = 'ExecError';
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
  }
}

/** Opens a path inside the root for execution: a regular file the caller may execute. */
function openExecutable(root: Root, path: string, cwd: string): { fd: number; virtual: string } {
  const absolute = path.startsWith('/') ? path : `${cwd.replace(/\/$/, '')}/${path}`;
  const found = root.walk(absolute, null, { followLast: true });
  try {
    if (found.errno !== 0) throw new ExecError(`${path}: errno ${found.errno}`, found.errno);
    if (found.proc) throw new ExecError(`${path}: in /proc`, ERRNO.EACCES);
    const fd =
      found.parent >= 0
        ? trySyscall(
            'openat',
            found.parent,
            Buffer.from(`${found.name}\0`, 'latin1'),
            O.O_RDONLY | O.O_CLOEXEC | O.O_NOFOLLOW,
            0,
          )
        : trySyscall('openat', found.fd, Buffer.from('.\0'), O.O_RDONLY | O.O_CLOEXEC, 0);
    if (fd < 0) throw new ExecError(`${path}: errno ${-fd}`, -fd);
    if (!fstatSync(fd).isFile()) {
      close(fd);
      throw new ExecError(`${path}: not a regular file`, ERRNO.EACCES);
    }
    return { fd, virtual: found.path };
  } finally {
    found.close();
  }
}

function head(fd: number, length: number, position = 0): Buffer {
  const buffer = Buffer.alloc(length);
  const got = readSync(fd, buffer, 0, length, position);
  return buffer.subarray(0, got);
}

/** Where an ELF's PT_INTERP is, and what it names. */
export interface Interpreter {
  path: string;
  offset: number;
  size: number;
}

/**
 * The sealed copy of `fd` whose PT_INTERP names
 * `/proc/self/fd/<interpreterFd>`, made once per file version (`variant`
 * tells copies made differently apart; `finish` sets the new copy up before
 * it is kept); null when that name does not fit in place.
 */
function interpreterPatched(
  fd: number,
  interp: Interpreter,
  interpreterFd: number,
  variant: string,
  finish: (memfd: number) => void,
): number | null {
  const named = Buffer.from(`/proc/self/fd/${interpreterFd}`, 'latin1');
  if (named.length + 1 > interp.size) return null;
  const stat = fstatSync(fd, { bigint: true });
  const key = `${variant}${stat.dev}:${stat.ino}:${stat.mtimeNs}:${stat.ctimeNs}:${stat.size}:${interpreterFd}`;
  let memfd = patched.get(key);
  if (memfd === undefined) {
    const copy = head(fd, Number(stat.size));
    copy.fill(0, interp.offset, interp.offset + interp.size);
    named.copy(copy, interp.offset);
    memfd = sealedMemfd(copy);
    try {
      finish(memfd);
    } catch (error) {
      close(memfd);
      throw error;
    }
    remember(key, memfd);
  }
  return memfd;
}

/**
 * A read-only descriptor of the sealed copy of `fd` whose PT_INTERP names
 * `/proc/self/fd/<interpreterFd>`; -1 when that does not fit in place.
 */
export function patchedCopy(fd: number, interp: Interpreter, interpreterFd: number): number {
  const memfd = interpreterPatched(fd, interp, interpreterFd, '', () => {});
  return memfd === null ? -1 : readOnlyReopen(memfd);
}

/**
 * A descriptor that neither reads nor writes of a sealed copy of `fd`
 * whose PT_INTERP names `/proc/self/fd/<interpreterFd>`, for a caller that
 * may execute the program but not read it: the copy's mode is 0111, with no
 * set-id bit, and its owner `owner`, none of the caller's uids (an owner may
 * chmod it). The kernel execs it as it execs the original under chroot(2):
 * the caller cannot read it (read(2) EBADF, a reopen through /proc EACCES)
 * and, the file unreadable to it, the process is not dumpable (would_dump(),
 * fs/exec.c). -1 when the name does not fit in place.
 */
export function execOnlyCopy(
  fd: number,
  interp: Interpreter,
  interpreterFd: number,
  owner: number,
): number {
  const memfd = interpreterPatched(fd, interp, interpreterFd, `x${owner}:`, (made) => {
    fchmodSync(made, 0o111);
    if (fstatSync(made).uid !== owner) fchownSync(made, owner, -1);
  });
  return memfd === null ? -1 : noAccessReopen(memfd);
}

/**
 * A read-only descriptor of a sealed copy of `fd`, as it is: for a file of
 * a copy-on-write layer over the root, which the sandbox's Landlock domain
 * does not let it execute (the layer's store is none of its paths).
 */
export function sealedCopy(fd: number): number {
  const stat = fstatSync(fd, { bigint: true });
  const key = `=${stat.dev}:${stat.ino}:${stat.mtimeNs}:${stat.ctimeNs}:${stat.size}`;
  let memfd = patched.get(key);
  if (memfd === undefined) {
    memfd = sealedMemfd(head(fd, Number(stat.size)));
    remember(key, memfd);
  }
  return readOnlyReopen(memfd);
}

/** The `#!` line of a file: its interpreter and optional argument; null: not a script. */
export function shebangOf(fd: number): { interpreter: string; arg: string | null } | null {
  const start = head(fd, SHEBANG_MAX);
  if (start[0] !== 0x23 || start[1] !== 0x21) return null;
  const line = start.toString('latin1', 2).split('\n')[0]!.trim();
  const interpreter = line.split(/[ \t]/, 1)[0]!;
  if (interpreter === '') return null;
  // load_script() (fs/binfmt_script.c): the rest of the line, spaces and tabs trimmed, is one argument.
  const arg = line.slice(interpreter.length).replace(/^[ \t]+/, '');
  return { interpreter, arg: arg === '' ? null : arg };
}

/**
 * A read-only descriptor of the sealed copy of the script `fd` whose `#!`
 * line names `interpreter` (with the same argument): a name the kernel
 * finds from the host's root (interpreter-name.ts).
 */
export function patchedScript(
  fd: number,
  script: { arg: string | null },
  interpreter: string,
): number {
  const stat = fstatSync(fd, { bigint: true });
  const key = `#!${stat.dev}:${stat.ino}:${stat.mtimeNs}:${stat.ctimeNs}:${stat.size}:${interpreter}`;
  let memfd = patched.get(key);
  if (memfd === undefined) {
    const contents = head(fd, Number(stat.size));
    const newline = contents.indexOf(0x0a);
    const line = `#!${interpreter}${script.arg === null ? '' : ` ${script.arg}`}\n`;
    memfd = sealedMemfd(
      Buffer.concat([
        Buffer.from(line, 'latin1'),
        newline < 0 ? Buffer.alloc(0) : contents.subarray(newline + 1),
      ]),
    );
    remember(key, memfd);
  }
  return readOnlyReopen(memfd);
}

/** PT_INTERP of an ELF64 file: the interpreter's path and where its bytes are; null: none (static, or not ELF64). */
export function interpreterOf(fd: number): { path: string; offset: number; size: number } | null {
  const header = head(fd, 64);
  if (header.length < 64 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return null;
  const phoff = Number(header.readBigUInt64LE(32));
  const entSize = header.readUInt16LE(54);
  const count = header.readUInt16LE(56);
  const table = head(fd, entSize * count, phoff);
  for (let i = 0; i + 56 <= table.length; i += entSize) {
    if (table.readUInt32LE(i) !== PT_INTERP) continue;
    const offset = Number(table.readBigUInt64LE(i + 8));
    const size = Number(table.readBigUInt64LE(i + 32));
    const text = head(fd, size, offset).toString('latin1');
    return { path: text.replace(/\0.*$/s, ''), offset, size };
  }
  return null;
}

/**
 * Finds `command` inside the root (searched in `pathList` when it has no
 * slash; `cwd` is the virtual cwd) and prepares its execution with `argv`.
 * Throws an {@link ExecError} with the kernel's errno when it cannot run.
 */
export function execFileInRoot(
  root: Root,
  command: string,
  argv: readonly string[],
  pathList: string,
  cwd: string,
): ExecFile {
  let path = command;
  if (!command.includes('/')) {
    const found = pathList
      .split(':')
      .map((dir) => `${dir || '.'}/${command}`)
      .find((candidate) => {
        const r = root.walk(candidate.startsWith('/') ? candidate : `${cwd}/${candidate}`, null, {
          followLast: true,
        });
        const ok = r.errno === 0 && !r.proc;
        r.close();
        return ok;
      });
    if (found === undefined) throw new ExecError(`${command}: command not found`, ERRNO.ENOENT);
    path = found;
  }
  return prepare(root, path, [...argv], cwd, 0);
}

function prepare(root: Root, path: string, argv: string[], cwd: string, depth: number): ExecFile {
  if (depth > MAX_DEPTH) throw new ExecError(`${path}: too many interpreters`, ERRNO.ELOOP);
  const { fd, virtual } = openExecutable(root, path, cwd);
  const opened = [fd];
  const closeAll = () => {
    for (const each of opened.splice(0)) close(each);
  };
  try {
    const allowed = trySyscall(
      'faccessat2',
      fd,
      Buffer.from('\0'),
      X_OK,
      AT_EMPTY_PATH | AT_EACCESS,
    );
    if (allowed < 0) throw new ExecError(`${path}: not executable`, -allowed);
    const script = shebangOf(fd);
    if (script !== null) {
      closeAll();
      const arg = script.arg === null ? [] : [script.arg];
      return prepare(
        root,
        script.interpreter,
        [script.interpreter, ...arg, path, ...argv.slice(1)],
        cwd,
        depth + 1,
      );
    }
    if (head(fd, 2).toString('latin1') === '#!') {
      throw new ExecError(`${path}: empty #! line`, ERRNO.ENOEXEC);
    }
    const interp = interpreterOf(fd);
    let interpreterFd: number | null = null;
    if (interp !== null) {
      interpreterFd = openExecutable(root, interp.path, '/').fd;
      opened.push(interpreterFd);
    }
    return {
      argv,
      virtual: `/${components(virtual).join('/')}`,
      fd,
      interpreterFd,
      file(interpreterChildFd) {
        if (interp === null || interpreterChildFd === null) return fd;
        const copy = patchedCopy(fd, interp, interpreterChildFd);
        if (copy < 0) return fd; // cannot be named in place: the host's, refused by Landlock
        opened.push(copy);
        return copy;
      },
      close: closeAll,
    };
  } catch (error) {
    closeAll();
    throw error;
  }
}
