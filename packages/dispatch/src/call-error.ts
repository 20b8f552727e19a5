/**
 * The answer the kernel would give when a call cannot be what the child
 * meant (a bad pointer: EFAULT; a bad dirfd: EBADF). Thrown by the memory
 * and path helpers; a handler may throw one too. The loop answers the
 * syscall with `errno` and reports nothing.
 */
export class CallError extends Error {
  override readonly name = 'CallError';
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}
