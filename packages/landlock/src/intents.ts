import type { FsRight } from './rights.js';

/** A rule by what the sandboxed program should be able to do beneath a path. */
export type Intent = 'read' | 'readExec' | 'write';

const READ: readonly FsRight[] = ['read_file', 'read_dir'];

/**
 * Rights each intent grants beneath a directory. On a file a rule keeps only
 * the file rights among them (see FILE_RIGHTS).
 *
 * `write` leaves out make_char and make_block: a device node made inside a
 * writable tree would be readable and writable through that same rule, which
 * for a sandbox running as root means raw disks. Grant them as raw rights when
 * really wanted. It also leaves out execute: combine with `readExec` for that.
 */
export const INTENT_RIGHTS: Readonly<Record<Intent, readonly FsRight[]>> = Object.freeze({
  read: READ,
  readExec: [...READ, 'execute'],
  write: [
    ...READ,
    'write_file',
    'remove_dir',
    'remove_file',
    'make_dir',
    'make_reg',
    'make_sock',
    'make_fifo',
    'make_sym',
    'refer',
    'truncate',
    'ioctl_dev',
  ],
});
