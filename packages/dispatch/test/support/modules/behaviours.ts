// Modules that exercise one context feature each, for the kernel tests.
import { openSync, writeSync } from 'node:fs';
import { close, hostArch, openAt, openFlags } from '@sandlock/sys';
import { answer, CallError, defineModule } from '../../../src/index.js';

let injectorOptions: { file: string; cloexec?: boolean };
let logFd = -1;
const { O_CLOEXEC } = openFlags(hostArch());

/** openat of /virtual/<name> gets options.file injected instead. */
export const injector = defineModule<{ file: string; cloexec?: boolean }>({
  name: 'injector',
  syscalls: ['openat'],
  setup(options) {
    injectorOptions = options;
  },
  handlers: {
    openat(ctx) {
      const path = ctx.readPath();
      if (!path.startsWith('/virtual/')) return answer.continue();
      // Not fs.openSync: the answer closes the fd with close(2), and the
      // worker's fs would warn when the number comes back.
      const fd = openAt(injectorOptions.file, openFlags(hostArch()).O_RDONLY | O_CLOEXEC);
      return answer.inject(fd, { cloexec: injectorOptions.cloexec });
    },
  },
});
/** getrandom fills the caller's buffer with 0x42 and returns its length. */
export const randomWriter = defineModule({
  name: 'random-writer',
  syscalls: ['getrandom'],
  handlers: {
    getrandom(ctx) {
      const { buf, buflen } = ctx.argsOf('getrandom');
      const length = Number(buflen > 256n ? 256n : buflen);
      ctx.write(buf, Buffer.alloc(length, 0x42));
      return answer.value(length);
    },
  },
});

/**
 * getuid answers the number of a descriptor its handler opened with
 * fs.openSync and closed with close(2), as an inject answer closes the
 * descriptor it is given.
 */
export const fsOpener = defineModule({
  name: 'fs-opener',
  syscalls: ['getuid'],
  handlers: {
    getuid() {
      const fd = openSync('/dev/null', 'r');
      close(fd);
      return answer.value(BigInt(fd));
    },
  },
});

/** Handlers that fail in the ways a plugin can. */
export const failing = defineModule({
  name: 'failing',
  syscalls: ['getppid', 'getpgrp', 'getsid', 'umask'],
  handlers: {
    getppid() {
      throw new Error('boom');
    },
    getpgrp: () => 'nonsense' as never,
    getsid() {
      throw new CallError(18 /* EXDEV */, 'not this one');
    },
    umask: () => answer.kill('umask is not allowed here'),
  },
});

/** Logs every resolved openat path (one line each) to options.log. */
export const pathLogger = defineModule<{ log: string }>({
  name: 'path-logger',
  syscalls: ['openat'],
  setup(options, env) {
    if (env.thread === 'worker') logFd = openSync(options.log, 'a');
  },
  handlers: {
    openat(ctx) {
      writeSync(logFd, `${ctx.resolvePath()}\n`);
      return answer.continue();
    },
  },
});
