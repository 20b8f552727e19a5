import { ERRNO } from './errno.js';

const errnoNames = new Map<number, string>(
  Object.entries(ERRNO).map(([name, value]) => [value, name]),
);

// Text as glibc's strerror() gives it for the errors a sandbox meets most; the
// rest fall back to the symbolic name so messages never need libc to render.
const errnoText: Record<string, string> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EINTR: 'Interrupted system call',
  EIO: 'Input/output error',
  E2BIG: 'Argument list too long',
  ENOEXEC: 'Exec format error',
  EBADF: 'Bad file descriptor',
  ECHILD: 'No child processes',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EACCES: 'Permission denied',
  EFAULT: 'Bad address',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EINVAL: 'Invalid argument',
  EMFILE: 'Too many open files',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  EPIPE: 'Broken pipe',
  ERANGE: 'Numerical result out of range',
  ENAMETOOLONG: 'File name too long',
  ENOSYS: 'Function not implemented',
  ELOOP: 'Too many levels of symbolic links',
  EOPNOTSUPP: 'Operation not supported',
  ECONNREFUSED: 'Connection refused',
  ETXTBSY: 'Text file busy',
  EXDEV: 'Invalid cross-device link',
  EBADFD: 'File descriptor in bad state',
};

/** The symbolic name of an errno number, e.g. `errnoName(1) === 'EPERM'`. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/** A short human description of an errno number. */
export function errnoMessage(errno: number): string {
  return errnoText[errnoName(errno)] ?? errnoName(errno);
}

/** A failed system call: which call, and the errno the kernel returned. */
export class SysError extends Error {
  override readonly name = 'SysError';
  /** The errno symbol, e.g. `'EPERM'`. */
  readonly code: string;

  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail?: string,
  ) {
    const code = errnoName(errno);
    const what = detail ? `${syscall} ${detail}` : syscall;
    super(`${what} failed: ${code} (${errnoMessage(errno)})`);
    this.code = code;
  }
}
