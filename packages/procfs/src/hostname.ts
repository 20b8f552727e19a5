// The virtual host name as a handler module of @sandlock/dispatch. The
// supervisor imports this file in its worker threads by URL (HOSTNAME_MODULE),
// so it has no side effects at import.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { posix } from 'node:path';
import {
  type Answer,
  answer,
  defineModule,
  type HandlerContext,
  ROOT_VIEW,
  type RootView,
} from '@sandlock/dispatch/module';
import { type ModulePolicy, policyReads } from '@sandlock/policy';
import { bytePath, trySyscall } from '@sandlock/sys';
import { hostnameFile, hostsWith, UTSNAME_SIZE, utsnameWith } from './content.js';
import { OPEN_SYSCALLS, openRequest, StaticFiles } from './synthetic.js';

/** The syscalls the hostname module is notified of. */
export const HOSTNAME_SYSCALLS: readonly string[] = ['uname', ...OPEN_SYSCALLS];

const FILES: ReadonlySet<string> = new Set(['/etc/hostname', '/proc/sys/kernel/hostname']);
const files = new StaticFiles();

/** uname(buf): the real struct utsname with the sandbox's nodename, written on the caller's behalf. */
function onUname(ctx: HandlerContext<ModulePolicy>): Answer {
  const hostname = ctx.session.policy.hostname;
  if (hostname === null) return answer.continue();
  const real = Buffer.alloc(UTSNAME_SIZE);
  const result = trySyscall('uname', real);
  if (result < 0) return answer.errno(-result);
  // A bad pointer: write() throws CallError(EFAULT), which the call returns,
  // as the kernel would.
  ctx.write(ctx.args[0] ?? 0n, utsnameWith(real, hostname));
  return answer.value(0);
}

const HOSTS = '/etc/hosts';
let canonicalHosts: string | null = null;

/** /etc/hosts where it really is (a symlink on some systems), found once per worker. */
function hostsPath(): string {
  if (canonicalHosts === null) {
    try {
      canonicalHosts = realpathSync(HOSTS);
    } catch {
      canonicalHosts = HOSTS;
    }
  }
  return canonicalHosts;
}

/**
 * An open of /etc/hostname or /proc/sys/kernel/hostname (read-only), with a
 * host name: a memfd holding `NAME\n`. Of /etc/hosts, when the policy lets
 * the sandbox read the real one: the real file (read now) with the real host
 * name replaced by NAME, so the name resolves (getent hosts, getaddrinfo),
 * and the network rules' host names at their pinned addresses.
 */
function onOpen(ctx: HandlerContext<ModulePolicy>): Answer {
  const { hostname } = ctx.session.policy;
  const request = openRequest(ctx);
  if (request === null) return answer.continue();
  const bundle = ctx.session.policy.trustBundles?.[request.path];
  if (bundle !== undefined) {
    // Not readable by the policy: the kernel refuses the real file (Landlock).
    if (!policyReads(ctx.session.policy, bytePath(request.path))) return answer.continue();
    return files.serve(bundle, request.cloexec);
  }
  const root = ctx.session.provided(ROOT_VIEW);
  if (root !== undefined) return onOpenInRoot(ctx, root, request);
  if (FILES.has(request.path)) {
    return hostname === null
      ? answer.continue()
      : files.serve(hostnameFile(hostname), request.cloexec);
  }
  if (request.path !== HOSTS && request.path !== hostsPath()) return answer.continue();
  // Not readable by the policy: the kernel refuses the real file (Landlock).
  if (!policyReads(ctx.session.policy, bytePath(hostsPath()))) return answer.continue();
  // A wildcard's pinned addresses (netDeny: names beneath it the policy names) are no /etc/hosts entry.
  const pinned = Object.fromEntries(
    Object.entries(ctx.session.policy.net?.hosts ?? {}).filter(([name]) => !name.startsWith('*.')),
  );
  const hosts = hostsFor(hostname, pinned);
  return hosts === null ? answer.continue() : files.serve(hosts, request.cloexec); // null: the kernel's ENOENT
}

/**
 * The same inside an emulated root (`--chroot`): the path as the sandbox
 * names it there, and the root's own /etc/hosts.
 */
function onOpenInRoot(
  ctx: HandlerContext<ModulePolicy>,
  root: RootView,
  request: { path: string; cloexec: boolean },
): Answer {
  const { hostname } = ctx.session.policy;
  const text = ctx.readPath();
  const path = text.startsWith('/') ? posix.resolve(text) : root.virtualOf(request.path);
  if (path !== null && FILES.has(path)) {
    return hostname === null
      ? answer.continue()
      : files.serve(hostnameFile(hostname), request.cloexec);
  }
  if (path !== HOSTS) return answer.continue();
  const real = root.read(HOSTS);
  if (real === null) return answer.continue();
  const hosts = hostsWith(
    real.toString('utf8'),
    osHostname(),
    hostname,
    ctx.session.policy.net?.hosts ?? {},
  );
  return files.serve(hosts, request.cloexec);
}

/** The last /etc/hosts built, and what it was built from (the file's identity and times, the names). */
let lastHosts: { key: string; text: string } | null = null;

/**
 * /etc/hosts with NAME for the host and the pinned names, rebuilt when the
 * real file changes (its inode, size or change time: an edit in place or a
 * rename over it) or the names do; null when there is no /etc/hosts.
 */
function hostsFor(
  hostname: string | null,
  pinned: Readonly<Record<string, readonly string[]>>,
): string | null {
  const stat = statSync(hostsPath(), { bigint: true, throwIfNoEntry: false });
  if (stat === undefined) return null;
  const realName = osHostname();
  const key = `${stat.dev}:${stat.ino}:${stat.size}:${stat.ctimeNs}:${stat.mtimeNs}\0${realName}\0${hostname}\0${JSON.stringify(pinned)}`;
  if (lastHosts?.key === key) return lastHosts.text;
  let real: string;
  try {
    real = readFileSync(hostsPath(), 'utf8');
  } catch {
    return null;
  }
  const text = hostsWith(real, realName, hostname, pinned);
  // File times move by the timer tick (coarse clocks before multigrain
  // timestamps, Linux 6.13): a second write of the same size within a tick
  // of this read would keep the key. A file changed this last second is
  // not remembered.
  const changed = Math.max(Number(stat.ctimeNs / 1_000_000n), Number(stat.mtimeNs / 1_000_000n));
  lastHosts = Date.now() - changed > 1000 ? { key, text } : null;
  return text;
}

/**
 * On for a sandbox whose policy has `hostname`: `uname` (so gethostname(),
 * `uname -n`, `hostname`, Python's socket.gethostname(), Node's
 * os.hostname()) and reads of /etc/hostname see that name, and /etc/hosts
 * resolves it. And for one whose network rules name hosts: /etc/hosts gives
 * each the addresses it was pinned to when the sandbox started. And for one
 * with an HTTP proxy: the trust bundles hold its CA too.
 */
export default defineModule<unknown, ModulePolicy>({
  name: 'hostname',
  syscalls: HOSTNAME_SYSCALLS,
  enabled: (policy) =>
    policy.hostname !== null ||
    Object.keys(policy.net?.hosts ?? {}).length > 0 ||
    policy.trustBundles !== undefined,
  handlers: {
    uname: onUname,
    ...Object.fromEntries(OPEN_SYSCALLS.map((name) => [name, onOpen])),
  },
});
