// Sandboxes inside supervised sandboxes. The kernel lets a task's seccomp
// filter chain hold one listener (kernel/seccomp.c, has_duplicate_listener():
// a second NEW_LISTENER filter fails with EBUSY), so a sandbox started inside
// a supervised sandbox asks the outer sandbox's supervisor to take its policy
// on (Supervisor.delegate of @sandlock/dispatch).
//
// The channel: one Unix socket per supervising process, in a fresh 0700
// directory, named to the sandboxed program by SANDLOCK_SUPERVISOR. Landlock
// does not mediate connect(2) to a named socket (it restricts creating one,
// LANDLOCK_ACCESS_FS_MAKE_SOCK), so an inner launcher reaches it with no
// grant. Who asks is the kernel's word (SO_PEERCRED, taken at connect(2)),
// never the message's: the asker must be a process of a sandbox this process
// supervises, and the inner sandbox's reaper its child.

import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Session, Supervisor } from '@sandlock/dispatch';
import { parentOf, pathWithin, trySyscall } from '@sandlock/sys';
import { SandboxError } from './errors.js';
import { type Policy, parsePolicy } from './policy.js';
import { sessionPolicy } from './supervision.js';

/** The variable that tells a launcher inside a supervised sandbox where to ask. */
export const SUPERVISOR_VARIABLE = 'SANDLOCK_SUPERVISOR';

/** A request is one JSON line; policies are small. */
const MAX_REQUEST = 1 << 20;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;

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

/** The pid of the process at the other end of a connected Unix socket (SO_PEERCRED). */
function peerPid(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return 0;
  const ucred = Buffer.alloc(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  const length = Buffer.alloc(4);
  length.writeUInt32LE(ucred.length);
  if (trySyscall('getsockopt', fd, SOL_SOCKET, SO_PEERCRED, ucred, length) < 0) return 0;
  return ucred.readInt32LE(0);
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
function withinOuter(inner: Policy, outer: Policy): Policy {
  return {
    ...inner,
    fsRead: intersection([...inner.fsRead, ...inner.fsWrite], [...outer.fsRead, ...outer.fsWrite]),
    fsWrite: intersection(inner.fsWrite, outer.fsWrite),
    fsDeny: [...new Set([...inner.fsDeny, ...outer.fsDeny])],
  };
}

interface DelegationRequest {
  reaperPid: number;
  programPid: number;
  policy: unknown;
}

/** Checks a request against the kernel's facts and hands the policy to the supervisor. */
async function answer(request: DelegationRequest, asker: number): Promise<void> {
  const outer = sandboxOf(asker);
  if (outer === undefined) {
    throw new Error(`process ${asker} is not in a sandbox this supervisor runs`);
  }
  const { reaperPid, programPid } = request;
  if (!Number.isInteger(reaperPid) || parentOf(reaperPid) !== asker) {
    throw new Error(`process ${reaperPid} is not a child of the asking process ${asker}`);
  }
  if (!Number.isInteger(programPid) || parentOf(programPid) !== reaperPid) {
    throw new Error(`process ${programPid} is not a child of the inner reaper ${reaperPid}`);
  }
  const policy = parsePolicy(request.policy);
  if (policy.plugins.length > 0) {
    throw new Error(
      'plugins cannot serve a sandbox inside a supervised sandbox: they would run in the outer supervisor, outside both sandboxes',
    );
  }
  // Kept as the policy of a sandbox nested deeper still: each level narrows.
  const view = withinOuter(policy, outer.policy);
  const session = outer.supervisor.delegate(outer.session, {
    reaperPid,
    programPid,
    policy: sessionPolicy(view),
  });
  track(reaperPid, session, view, outer.supervisor);
}

function serve(socket: Socket): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    if (buffered.length > MAX_REQUEST) socket.destroy();
    const end = buffered.indexOf('\n');
    if (end < 0) return;
    socket.removeAllListeners('data');
    const reply = (body: object) => socket.end(`${JSON.stringify(body)}\n`);
    let request: DelegationRequest;
    try {
      request = JSON.parse(buffered.slice(0, end));
    } catch {
      reply({ ok: false, error: 'the request is not JSON' });
      return;
    }
    answer(request, peerPid(socket)).then(
      () => reply({ ok: true }),
      (error: unknown) => reply({ ok: false, error: (error as Error).message ?? String(error) }),
    );
  });
}

/**
 * The socket path to give a supervised sandbox's program (created on first
 * use; it does not keep this process alive), or null where this process
 * cannot create one (itself in a sandbox without a writable temporary
 * directory): sandboxes inside that one then cannot nest a supervised one.
 */
export function delegationSocket(): Promise<string | null> {
  if (server === null) {
    let dir: string;
    try {
      dir = mkdtempSync(join(tmpdir(), 'sandlock-'));
    } catch {
      server = Promise.resolve(null);
      return server;
    }
    const path = join(dir, 'supervisor.sock');
    server = new Promise<string | null>((resolve) => {
      const created = createServer(serve);
      created.once('error', () => resolve(null));
      created.listen(path, () => {
        created.unref();
        resolve(path);
      });
    });
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
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
  request: { reaperPid: number; programPid: number; policy: Policy },
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
