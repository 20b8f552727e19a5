// Sandboxes inside supervised sandboxes. The kernel lets a task's seccomp
// filter chain hold one listener (kernel/seccomp.c, has_duplicate_listener():
// a second NEW_LISTENER filter fails with EBUSY), so a sandbox started inside
// a supervised sandbox asks the outer sandbox's supervisor to take its policy
// on (Supervisor.delegate of @sandlock/dispatch).
//
// The channel: one Unix socket per supervising process, in a fresh 0700
// directory removed when the process ends (socket-dir.ts), named to the
// sandboxed program by SANDLOCK_SUPERVISOR. Landlock does not mediate
// connect(2) to a named socket (it restricts creating one,
// LANDLOCK_ACCESS_FS_MAKE_SOCK), so an inner launcher reaches it with no
// grant; the destinations module of @sandlock/network, which makes every
// connect of a supervised sandbox, lets it reach this socket (`unix` of the
// modules' view: withDelegationSocket), and its reaper connects. Who asks is
// the kernel's word, never the message's: a pidfd of the process that
// connected (SO_PEERPIDFD, taken at connect(2)), so that a pid reused by the
// time the request arrives names no one. The asker must be a process of a
// sandbox this process supervises, and the inner sandbox's reaper its child;
// or the reaper of such a sandbox (the connect made on its behalf), and the
// inner reaper a process of that sandbox.
//
// The socket is reachable from every supervised sandbox, so what it may cost
// this process is bounded: connections (per sandbox and in all), how long
// each may last, and the bytes of requests held.

import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { hostPathsInside } from '@sandlock/chroot';
import type { Session, Supervisor } from '@sandlock/dispatch';
import { resolveNetHosts } from '@sandlock/network';
import {
  canonical,
  connectPortsOf,
  expandPresets,
  type ModulePolicy,
  modulePolicy,
} from '@sandlock/policy';
import {
  close,
  holdsPid,
  isDescendantOf,
  parentOf,
  pathWithin,
  peerPidfd,
  pidOfPidfd,
  trySyscall,
} from '@sandlock/sys';
import { SandboxError } from './errors.js';
import { nestedHttp } from './http.js';
import { type Policy, parsePolicy } from './policy.js';
import { makeSocketDir, SOCKET_NAME } from './socket-dir.js';

/** The variable that tells a launcher inside a supervised sandbox where to ask. */
export const SUPERVISOR_VARIABLE = 'SANDLOCK_SUPERVISOR';

/** Connections to the delegation socket at once, from all sandboxes together. */
export const DELEGATION_MAX_CONNECTIONS = 64;
/** Connections at once from the processes of one sandbox (a launch inside makes one). */
export const DELEGATION_MAX_CONNECTIONS_PER_SANDBOX = 4;
/** How long a connection may stay open, request and answer included, in ms. */
export const DELEGATION_DEADLINE_MS = 5000;
/** The largest request: one JSON line (a policy is a few KiB). */
export const DELEGATION_MAX_REQUEST = 256 * 1024;
/** Bytes of unfinished requests held at once, all connections together. */
export const DELEGATION_MAX_BUFFERED = 4 * 1024 * 1024;

interface Supervised {
  readonly session: Session;
  /** What its modules enforce (for a nested sandbox: narrowed by the sandboxes around it). */
  readonly policy: Policy;
  /** The supervisor whose session it is (a nested sandbox's is its outer one's). */
  readonly supervisor: Supervisor;
}

/** Sandboxes this process supervises (its own and delegated ones), by reaper pid. */
const supervised = new Map<number, Supervised>();
let server: Promise<string | null> | null = null;

/** The innermost supervised sandbox `pid` runs in (its nearest ancestor that is a reaper). */
function sandboxOf(pid: number): Supervised | undefined {
  for (let at = parentOf(pid) ?? 0, depth = 0; at > 1 && depth < 4096; depth++) {
    const found = supervised.get(at);
    if (found !== undefined) return found.session.ended ? undefined : found;
    at = parentOf(at) ?? 0;
  }
  return undefined;
}

/** A process that connected, pinned by a pidfd taken at connect(2), and its sandbox. */
interface Asker {
  readonly pidfd: number;
  readonly pid: number;
  readonly sandbox: Supervised;
  /** The asker is the sandbox's reaper: a connect made on the sandbox's behalf. */
  readonly reaper: boolean;
}

/** A pidfd of `pid`, or null when there is no such process. */
function pinned(pid: unknown): number | null {
  if (!Number.isInteger(pid) || (pid as number) <= 0) return null;
  const pidfd = trySyscall('pidfd_open', pid as number, 0);
  return pidfd < 0 ? null : pidfd;
}

/**
 * Who is at the other end of `socket`: the process that connected, through
 * its pidfd, and the supervised sandbox it runs in. Throws, saying why, when
 * that is not one of this supervisor's sandboxes or cannot be told.
 */
function identify(socket: Socket): Asker {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the connection has no descriptor');
  const pidfd = peerPidfd(fd);
  if (pidfd === null) {
    // SO_PEERCRED's pid alone may be reused before the request is read.
    throw new Error(
      'this kernel lacks SO_PEERPIDFD (Linux 6.5), without which the supervisor cannot tell which process asks',
    );
  }
  try {
    const pid = pidOfPidfd(pidfd);
    if (pid === null) throw new Error('the process that connected has exited');
    const own = supervised.get(pid);
    const reaper = own !== undefined && !own.session.ended;
    const sandbox = reaper ? own : sandboxOf(pid);
    // Still holding its pid after the walk: the walk was of its ancestors.
    if (sandbox === undefined || !holdsPid(pidfd)) {
      throw new Error(`process ${pid} is not in a sandbox this supervisor runs`);
    }
    return { pidfd, pid, sandbox, reaper };
  } catch (error) {
    close(pidfd);
    throw error;
  }
}

/** The paths both lists grant: for each pair, the deeper one when one lies within the other. */
function intersection(inner: readonly string[], outer: readonly string[]): string[] {
  const out = new Set<string>();
  for (const a of inner) {
    for (const b of outer) {
      if (pathWithin(a, b)) out.add(a);
      else if (pathWithin(b, a)) out.add(b);
    }
  }
  return [...out];
}

/**
 * The inner policy as the modules serving the inner sandbox must see it. They
 * act on behalf of its processes with this supervisor's rights, outside both
 * sandboxes' Landlock domains (proc-pids opens /proc files, hostname reads
 * /etc/hosts): what they may read for it is what both policies grant, never
 * more than the outer one.
 */
function withinOuter(given: Policy, enclosing: Policy): Policy {
  const inner = expandPresets(given);
  const outer = expandPresets(enclosing);
  return {
    ...inner,
    devices: inner.devices && outer.devices,
    fsRead: intersection([...inner.fsRead, ...inner.fsWrite], [...outer.fsRead, ...outer.fsWrite]),
    fsWrite: intersection(inner.fsWrite, outer.fsWrite),
    fsDeny: [...new Set([...inner.fsDeny, ...outer.fsDeny])],
    // Named Unix sockets the inner one names that the outer one could reach.
    unix: intersection(inner.unix, [...outer.unix, ...outer.fsWrite]).filter(
      (path) =>
        outer.unix.some((entry) => pathWithin(path, entry)) ||
        !outer.fsDeny.some((entry) => pathWithin(path, entry)),
    ),
  };
}

/**
 * The inner policy with its paths on the host's side when the outer sandbox
 * has a root (an emulated chroot, a sandlock-oci container): the inner
 * launcher wrote them as it sees them, inside that root, and its processes
 * keep the root (the chroot module serves them too), as it would be wrong
 * for the modules to walk their paths from the host's root.
 */
function insideRoot(given: Policy, enclosing: Policy): Policy {
  if (enclosing.chroot === null) return given;
  return hostPathsInside(expandPresets(given), enclosing.chroot, enclosing.fsMount) as Policy;
}

/** The addresses of `policy`'s host names now; throws saying which did not resolve. */
async function pinnedHostsOf(policy: Policy): Promise<Record<string, string[]>> {
  try {
    return await resolveNetHosts(policy);
  } catch (error) {
    throw new Error(((error as Error).message ?? String(error)).replace(/^sandlock: /, ''));
  }
}

/**
 * The modules' view of a delegated sandbox with the network rules of the
 * sandboxes around it (`around`, the enclosing sandbox's view, which holds
 * its own enclosing ones): its traffic passes every level's address rules
 * (`enclosingNet`) and its binds every level's bind rules
 * (`enclosingBinds`), the ports asked for, remapped or not. Where the
 * sandbox around it has its binds answered, so does it: its binds module
 * answers them, checked against every level; and a level's private port
 * space gives it one (its binds of ports taken on the host get free ones).
 */
function narrowedBy(own: ModulePolicy, around: ModulePolicy): ModulePolicy {
  const enclosingNet = [...(around.enclosingNet ?? []), ...(around.net ? [around.net] : [])];
  const enclosingBinds = [...(around.enclosingBinds ?? []), around.binds];
  // Where the sandbox around it answers binds, its own binds module must
  // answer them first, checking every level: the outer one refuses the TCP
  // binds of a process with a Landlock domain of its own.
  const answered = around.binds.tcpOnBehalf || around.datagrams.udp;
  const binds = {
    ...own.binds,
    tcpOnBehalf: own.binds.tcpOnBehalf || answered,
    remap: own.binds.remap || enclosingBinds.some((level) => level.remap),
  };
  return {
    ...own,
    binds,
    enclosingNet,
    enclosingBinds,
    mediatesDestinations: true,
    delegated: true,
  };
}

interface DelegationRequest {
  reaperPid: number;
  programPid: number;
  policy: unknown;
  /** The secrets of the policy's credentials, read by the inner launcher (it holds them). */
  secrets?: unknown;
}

/** The request's secrets: credential names to one-line strings. */
function secretsOf(given: unknown): Map<string, string> {
  if (given === undefined) return new Map();
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    throw new Error('the secrets of the request are not an object');
  }
  const secrets = new Map<string, string>();
  for (const [name, value] of Object.entries(given)) {
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) {
      throw new Error(`the secret of credential ${name} is not a line of text`);
    }
    secrets.set(name, value);
  }
  return secrets;
}

/** Checks a request against the kernel's facts and hands the policy to the supervisor. */
async function answer(request: DelegationRequest, asker: Asker): Promise<void> {
  if (!holdsPid(asker.pidfd)) {
    throw new Error(`the process that connected (pid ${asker.pid}) has exited`);
  }
  const { reaperPid, programPid } = request;
  // Pinned before they are checked: if each still holds its pid after the
  // checks, the checks were of these processes.
  const reaper = pinned(reaperPid);
  const program = pinned(programPid);
  try {
    // A connect made by a sandbox's reaper (for a process of that sandbox,
    // or of one delegated inside it, whose calls its listener serves): the
    // inner reaper must be a process of that sandbox or of one nested in it,
    // and is narrowed by the sandbox it runs in.
    const enclosing = asker.reaper ? sandboxOf(reaperPid) : asker.sandbox;
    const launched = asker.reaper
      ? enclosing !== undefined &&
        (enclosing === asker.sandbox || isDescendantOf(enclosing.session.reaperPid, asker.pid))
      : parentOf(reaperPid) === asker.pid;
    if (reaper === null || enclosing === undefined || !launched) {
      throw new Error(`process ${reaperPid} is not a child of the asking process ${asker.pid}`);
    }
    const outer = enclosing;
    if (outer.session.ended) throw new Error(`the sandbox of process ${asker.pid} has ended`);
    if (program === null || parentOf(programPid) !== reaperPid) {
      throw new Error(`process ${programPid} is not a child of the inner reaper ${reaperPid}`);
    }
    if (![asker.pidfd, reaper, program].every(holdsPid)) {
      throw new Error('a process of the request exited while it was checked');
    }
    const policy = insideRoot(parsePolicy(request.policy), outer.policy);
    const secrets = secretsOf(request.secrets);
    if (policy.plugins.length > 0) {
      throw new Error(
        'plugins cannot serve a sandbox inside a supervised sandbox: they would run in the outer supervisor, outside both sandboxes',
      );
    }
    // Its rules' host names, resolved here and pinned for its life (its
    // /etc/hosts shows them), as a sandbox of its own has them resolved by
    // its launcher: inside the outer sandbox, the launcher's resolver is the
    // outer sandbox's, which may reach no DNS.
    const hosts = await pinnedHostsOf(policy);
    // Kept as the policy of a sandbox nested deeper still: each level narrows.
    const view = withinOuter(policy, outer.policy);
    const around = outer.session.policy as ModulePolicy;
    // Its connects are made by the outer reaper, outside its Landlock domain:
    // the TCP ports that domain (and those of the delegated ones around it)
    // lets it connect to are checked by the modules instead.
    const delegatedConnectPorts = [
      ...(around.delegatedConnectPorts ?? []),
      connectPortsOf(expandPresets(policy)),
    ];
    const own = modulePolicy(view, undefined, hosts);
    // The outer's HTTP proxy takes the inner's connects that its rules or
    // the inner's cover, and holds them to both (nested levels: http.ts).
    const http = await nestedHttp(outer.session.id, policy, own, secrets);
    let session: Session;
    try {
      session = outer.supervisor.delegate(outer.session, {
        reaperPid,
        programPid,
        policy: withDelegationSocket(
          {
            ...narrowedBy(own, around),
            delegatedConnectPorts,
            ...(http !== null
              ? { httpRedirect: http.httpRedirect, trustBundles: http.trustBundles }
              : {}),
          },
          await delegationSocket(),
        ),
      });
    } catch (error) {
      http?.close();
      throw error;
    }
    if (http !== null) {
      http.attach(session.id);
      void session.closed.then(() => http.close());
    }
    track(reaperPid, session, view, outer.supervisor);
  } finally {
    if (reaper !== null) close(reaper);
    if (program !== null) close(program);
  }
}

/** Open connections per sandbox, and bytes of unfinished requests held in all. */
const open = new Map<Supervised, number>();
let buffered = 0;

/** Sends the answer and closes the connection once it is written (whatever the asker does). */
function reply(socket: Socket, body: object): void {
  socket.end(`${JSON.stringify(body)}\n`, () => socket.destroy());
}

function serve(socket: Socket): void {
  socket.on('error', () => socket.destroy());
  const deadline = setTimeout(() => socket.destroy(), DELEGATION_DEADLINE_MS);
  deadline.unref();
  socket.once('close', () => clearTimeout(deadline));
  let asker: Asker;
  try {
    asker = identify(socket);
  } catch (error) {
    reply(socket, { ok: false, error: (error as Error).message });
    return;
  }
  const count = open.get(asker.sandbox) ?? 0;
  if (count >= DELEGATION_MAX_CONNECTIONS_PER_SANDBOX) {
    close(asker.pidfd);
    reply(socket, {
      ok: false,
      error: `the sandbox of process ${asker.pid} has ${count} connections to its supervisor open already (at most ${DELEGATION_MAX_CONNECTIONS_PER_SANDBOX})`,
    });
    return;
  }
  open.set(asker.sandbox, count + 1);
  const chunks: Buffer[] = [];
  let length = 0;
  const release = () => {
    buffered -= length;
    length = 0;
    chunks.length = 0;
  };
  socket.once('close', () => {
    release();
    close(asker.pidfd);
    const left = (open.get(asker.sandbox) ?? 1) - 1;
    if (left > 0) open.set(asker.sandbox, left);
    else open.delete(asker.sandbox);
  });
  socket.on('data', (chunk: Buffer) => {
    const end = chunk.indexOf(0x0a);
    const taken = end < 0 ? chunk : chunk.subarray(0, end);
    length += taken.length;
    buffered += taken.length;
    chunks.push(taken);
    if (length > DELEGATION_MAX_REQUEST || buffered > DELEGATION_MAX_BUFFERED) {
      socket.destroy();
      return;
    }
    if (end < 0) return;
    socket.removeAllListeners('data');
    socket.pause();
    const line = Buffer.concat(chunks).toString('utf8');
    release();
    let request: DelegationRequest;
    try {
      request = JSON.parse(line);
    } catch {
      reply(socket, { ok: false, error: 'the request is not JSON' });
      return;
    }
    answer(request, asker).then(
      () => reply(socket, { ok: true }),
      (error: unknown) =>
        reply(socket, { ok: false, error: (error as Error).message ?? String(error) }),
    );
  });
  socket.resume();
}

/**
 * The socket path to give a supervised sandbox's program (created on first
 * use; it does not keep this process alive), or null where this process
 * cannot create one (itself in a sandbox without a writable temporary
 * directory): sandboxes inside that one then cannot nest a supervised one.
 */
/**
 * The modules' view of a supervised sandbox's policy, with the delegation
 * socket among the named Unix sockets it may reach (a sandbox started
 * inside asks there).
 */
export function withDelegationSocket(view: ModulePolicy, socket: string | null): ModulePolicy {
  if (socket === null) return view;
  // delegationSocket: the name the sandbox is given (SUPERVISOR_VARIABLE), as it is.
  return { ...view, unix: [...view.unix, canonical(socket)], delegationSocket: socket };
}

export function delegationSocket(): Promise<string | null> {
  if (server === null) {
    let dir: string;
    try {
      dir = makeSocketDir();
    } catch {
      // Not remembered: a directory that could not be made now (no
      // descriptor left, a full disk) may be made by the next sandbox.
      return Promise.resolve(null);
    }
    const path = join(dir, SOCKET_NAME);
    const starting = new Promise<string | null>((resolve) => {
      // Paused: nothing is read from a connection before it is accepted as a request.
      const created = createServer({ pauseOnConnect: true }, serve);
      // Past it, Node closes a new connection as soon as it is accepted.
      created.maxConnections = DELEGATION_MAX_CONNECTIONS;
      created.once('error', () => resolve(null));
      created.listen(path, () => {
        created.unref();
        resolve(path);
      });
    });
    server = starting;
    // A socket that could not be made is tried again by the next sandbox.
    void starting.then((made) => {
      if (made === null && server === starting) server = null;
    });
  }
  return server;
}

/** Records a supervised sandbox until its session closes. */
export function track(
  reaperPid: number,
  session: Session,
  policy: Policy,
  supervisor: Supervisor,
): void {
  supervised.set(reaperPid, { session, policy, supervisor });
  void session.closed.then(() => {
    if (supervised.get(reaperPid)?.session === session) supervised.delete(reaperPid);
  });
}

/**
 * From inside a supervised sandbox: asks its supervisor (at `socketPath`) to
 * enforce `policy` on the sandbox whose reaper is `reaperPid`. Rejects with a
 * SandboxError saying why the supervisor refused.
 */
export function requestDelegation(
  socketPath: string,
  request: {
    reaperPid: number;
    programPid: number;
    policy: Policy;
    secrets?: Readonly<Record<string, string>>;
  },
): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) =>
      reject(
        new SandboxError(
          `sandlock: the supervisor of the sandbox around this process cannot take this sandbox's policy on: ${why}`,
          'delegate',
        ),
      );
    const socket = createConnection(socketPath);
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('error', (error) => fail(`${SUPERVISOR_VARIABLE}=${socketPath}: ${error.message}`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
    });
    socket.on('end', () => {
      let reply: { ok?: boolean; error?: string };
      try {
        reply = JSON.parse(buffered);
      } catch {
        fail('it sent no answer');
        return;
      }
      if (reply.ok === true) resolve();
      else fail((reply.error ?? 'no reason given').replace(/^sandlock: /, ''));
    });
    socket.write(`${JSON.stringify(request)}\n`);
  });
}
