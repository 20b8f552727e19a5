// A sandbox's HTTP proxy (@sandlock/http) in the supervisor's process: a
// listener on a loopback port, to which the reaper connects the sandbox's
// connects an HTTP rule covers (@sandlock/network's redirect). Each accepted
// connection is handed to the proxy with the destination the sandbox
// dialled, recorded when the reaper's connect was made and keyed by the
// sandbox socket's own address (the accepted connection's peer).
import { lookup } from 'node:dns/promises';
import { realpathSync } from 'node:fs';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { type Denial, type Destination, type HttpSetup, httpSetup } from '@sandlock/http';
import { onRedirectedConnect, type RedirectedConnect } from '@sandlock/network';
import {
  type HttpRedirect,
  type HttpRule,
  type ModulePolicy,
  parseHttpAuth,
  parseHttpRule,
  policyReads,
} from '@sandlock/policy';
import { SandboxError } from './errors.js';
import type { Policy } from './policy.js';

/** How long an accepted connection waits for its record (the reaper's connect answered on this thread). */
const RECORD_WAIT_MS = 10_000;

export interface SandboxHttp {
  readonly redirect: HttpRedirect;
  /** The trust bundles with the CA, by path (both the path opened and the file's real path). */
  readonly trustBundles: Record<string, string>;
  readonly setup: HttpSetup;
  /** Takes the redirected connects of session `id`. */
  attach(id: number): void;
  /** Stops listening and ends the proxy's connections. */
  close(): Promise<void>;
}

/** Whether the policy has what the proxy enforces: HTTP rules, credentials to add. */
export function hasHttpRules(
  policy: Pick<Policy, 'httpAllow' | 'httpDeny' | 'httpAuth' | 'credentials'>,
): boolean {
  return (
    policy.httpAllow.length > 0 ||
    policy.httpDeny.length > 0 ||
    policy.httpAuth.length > 0 ||
    Object.keys(policy.credentials).length > 0
  );
}

/** The HTTP rules of the policy, those of httpAuth included. */
function rulesOf(policy: Policy): HttpRule[] {
  const rules: HttpRule[] = [];
  for (const text of [...policy.httpAllow, ...policy.httpDeny]) {
    const rule = parseHttpRule(text);
    if (typeof rule === 'string') throw new SandboxError(rule, 'http policy');
    rules.push(rule);
  }
  for (const text of policy.httpAuth) {
    const auth = parseHttpAuth(text);
    if (typeof auth === 'string') throw new SandboxError(auth, 'http policy');
    rules.push(auth.rule);
  }
  return rules;
}

/**
 * The trust bundles the sandbox reads, by the path it opens and the path
 * the file really is at (a symlink on some systems).
 */
function bundleFiles(files: ReadonlyMap<string, string>): Record<string, string> {
  const byPath: Record<string, string> = {};
  for (const [path, content] of files) {
    byPath[path] = content;
    try {
      byPath[realpathSync(path)] = content;
    } catch {
      // Not on this host: served at the path named.
    }
  }
  return byPath;
}

/**
 * The destinations that go to the proxy: the addresses of the hosts HTTP
 * rules name, at the rule's port or any; every destination when a rule's
 * host is a wildcard (its addresses are not known in advance).
 */
async function coveredDestinations(policy: Policy): Promise<HttpRedirect['covers']> {
  const covers: { address: string; port: number | null }[] = [];
  for (const rule of rulesOf(policy)) {
    if (rule.host === '*' || rule.host.startsWith('*.')) return 'all';
    if (isIP(rule.host) !== 0) {
      covers.push({ address: rule.host, port: rule.port });
      continue;
    }
    let found: { address: string }[];
    try {
      found = await lookup(rule.host, { all: true, verbatim: true });
    } catch (error) {
      throw new SandboxError(
        `sandlock: cannot resolve ${rule.host} of an HTTP rule: ${(error as Error).message}`,
        'http policy',
      );
    }
    for (const { address } of found) covers.push({ address, port: rule.port });
  }
  return covers;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('no port'));
      else resolve(address.port);
    });
  });
}

const keyOf = (address: string, port: number) =>
  `${address.startsWith('::ffff:') ? address.slice(7) : address}:${port}`;

/** The proxy of a sandbox with HTTP rules, listening; null without them. */
export async function startHttp(
  policy: Policy,
  view: ModulePolicy,
  onDenied: (denial: Denial) => void,
): Promise<SandboxHttp | null> {
  if (!hasHttpRules(policy)) return null;
  const covers = await coveredDestinations(policy);
  const setup = await httpSetup(policy, view.net, {
    readable: (path) => policyReads(policy, path),
    onDenied,
  });
  // Records not yet claimed by an accepted connection, and connections waiting for theirs.
  const records = new Map<string, { destination: Destination; expiry: NodeJS.Timeout }>();
  const waiting = new Map<string, (destination: Destination) => void>();
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    const key = keyOf(socket.remoteAddress ?? '', socket.remotePort ?? 0);
    const record = records.get(key);
    if (record !== undefined) {
      records.delete(key);
      clearTimeout(record.expiry);
      setup.proxy.handle(socket, record.destination);
      return;
    }
    // Not made by the reaper for a redirected connect (or its record is late).
    const timer = setTimeout(() => {
      waiting.delete(key);
      socket.destroy();
    }, RECORD_WAIT_MS);
    socket.on('error', () => {});
    waiting.set(key, (destination) => {
      clearTimeout(timer);
      setup.proxy.handle(socket, destination);
    });
  });
  let port: number;
  try {
    port = await listen(server);
  } catch (error) {
    await setup.proxy.close();
    throw new SandboxError(
      `sandlock: the HTTP proxy cannot listen: ${(error as Error).message}`,
      'http proxy',
    );
  }
  let detach: (() => void) | null = null;
  const record = ({ local, destination }: RedirectedConnect) => {
    const key = keyOf(local.address, local.port);
    const waiter = waiting.get(key);
    if (waiter !== undefined) {
      waiting.delete(key);
      waiter(destination);
      return;
    }
    const previous = records.get(key);
    if (previous !== undefined) clearTimeout(previous.expiry);
    const expiry = setTimeout(() => records.delete(key), RECORD_WAIT_MS);
    expiry.unref();
    records.set(key, { destination, expiry });
  };
  return {
    redirect: { port, covers },
    trustBundles: bundleFiles(setup.bundle.files),
    setup,
    attach(id) {
      detach = onRedirectedConnect(id, record);
    },
    async close() {
      detach?.();
      for (const { expiry } of records.values()) clearTimeout(expiry);
      records.clear();
      server.close();
      await setup.proxy.close();
    },
  };
}
