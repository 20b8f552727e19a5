// The virtual host name as a handler module of @sandlock/dispatch. The
// supervisor imports this file in its worker threads by URL (HOSTNAME_MODULE),
// so it has no side effects at import and pulls nothing from
// @sandlock/dispatch at run time: its answers are plain Answer objects.
import type { DispatchModule, HandlerContext } from '@sandlock/dispatch';
import { trySyscall } from '@sandlock/sys';
import {
  hostnameFile,
  hostnameOf,
  type ProcfsPolicy,
  UTSNAME_SIZE,
  utsnameWith,
} from './content.js';
import {
  CONTINUE,
  OPEN_SYSCALLS,
  openRequest,
  type PlainAnswer,
  StaticFiles,
} from './synthetic.js';

/** The syscalls the hostname module is notified of. */
export const HOSTNAME_SYSCALLS: readonly string[] = ['uname', ...OPEN_SYSCALLS];

const FILES: ReadonlySet<string> = new Set(['/etc/hostname', '/proc/sys/kernel/hostname']);
const files = new StaticFiles();

/** uname(buf): the real struct utsname with the sandbox's nodename, written on the caller's behalf. */
function onUname(ctx: HandlerContext<ProcfsPolicy>): PlainAnswer {
  const hostname = hostnameOf(ctx.session.policy);
  if (hostname === null) return CONTINUE;
  const real = Buffer.alloc(UTSNAME_SIZE);
  const result = trySyscall('uname', real);
  if (result < 0) return { kind: 'errno', errno: -result };
  // A bad pointer: write() throws CallError(EFAULT), which the call returns,
  // as the kernel would.
  ctx.write(ctx.args[0] ?? 0n, utsnameWith(real, hostname));
  return { kind: 'value', value: 0n };
}

/** An open of /etc/hostname or /proc/sys/kernel/hostname (read-only): a memfd holding `NAME\n`. */
function onOpen(ctx: HandlerContext<ProcfsPolicy>): PlainAnswer {
  const hostname = hostnameOf(ctx.session.policy);
  if (hostname === null) return CONTINUE;
  const request = openRequest(ctx);
  if (request === null || !FILES.has(request.path)) return CONTINUE;
  return files.serve(hostnameFile(hostname), request.cloexec);
}

/**
 * On for a sandbox whose policy has `hostname`: `uname` (so gethostname(),
 * `uname -n`, `hostname`, Python's socket.gethostname(), Node's
 * os.hostname()) and reads of /etc/hostname see that name.
 */
const hostnameModule: DispatchModule<unknown, ProcfsPolicy> = {
  name: 'hostname',
  syscalls: HOSTNAME_SYSCALLS,
  enabled: (policy) => hostnameOf(policy) !== null,
  handlers: {
    uname: onUname,
    ...Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
  },
};

export default hostnameModule;
