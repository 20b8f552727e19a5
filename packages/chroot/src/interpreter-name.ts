// The name a `#!` interpreter is opened by when the script runs from a
// copy: binfmt_script gives the interpreter the `#!` path as its argv[0]
// and opens it by that path from the process's root, the host's
// (load_script() in fs/binfmt_script.c). `/proc/self/fd/J` finds the
// interpreter's descriptor J, but busybox picks its applet by the base
// name of argv[0] and bash its sh mode. So the copy names
// `/proc/self/fd/D/sh`: D a directory of this session's, injected
// close-on-exec, holding `sh` as a symlink to `/proc/self/fd/J`. The kernel
// follows both magic links in the caller's own descriptor table; the
// directory holds nothing but such symlinks (searchable, not readable, by
// the sandbox's user), and Landlock checks the execution of the file the
// last one names.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AT_FDCWD, hostArch, openFlags, trySyscall } from '@sandlock/sys';

const O = openFlags(hostArch());

/** One session's directory of interpreter names. */
export class InterpreterNames {
  private dir: string | null = null;
  private readonly made = new Set<string>();

  /**
   * A directory descriptor (this process's, close-on-exec) whose entry
   * `name` is a symlink to `/proc/self/fd/<fd>`, or -errno; null when
   * `name` cannot be an entry.
   */
  open(fd: number, name: string): number | null {
    if (name === '' || name === '.' || name === '..' || name.includes('/')) return null;
    if (this.dir === null) this.dir = mkdtempSync(join(tmpdir(), 'sandlock-interpreters-'));
    const sub = join(this.dir, String(fd));
    const key = `${fd}/${name}`;
    if (!this.made.has(key)) {
      mkdirSync(sub, { recursive: true, mode: 0o711 });
      try {
        symlinkSync(`/proc/self/fd/${fd}`, join(sub, name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      this.made.add(key);
    }
    return trySyscall(
      'openat',
      AT_FDCWD,
      Buffer.from(`${sub}\0`, 'latin1'),
      O.O_RDONLY | O.O_DIRECTORY | O.O_CLOEXEC,
      0,
    );
  }

  remove(): void {
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
    this.dir = null;
    this.made.clear();
  }
}
