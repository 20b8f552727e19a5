// A sandbox started inside a supervised sandbox has its policy taken on by
// the outer supervisor (nesting.ts), which must enforce both sandboxes'
// network rules: the inner one's host names resolved there and pinned, its
// connects passing the outer address rules, its binds the outer bind rules.
// The inner launcher is Node running this package's build inside the outer
// sandbox.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON } from '../../../tools/test-support/index.js';
import { SYSTEM_READ, systemBuilder } from './helpers.js';

const REPOSITORY = fileURLToPath(new URL('../../..', import.meta.url));
const dist = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'sandlock-nested-network-'));

const servers: Server[] = [];
let ports: number[] = [];

/** A TCP server on 127.0.0.1 that takes connections; its port. */
function listen(): Promise<number> {
  const server = createServer((socket) => socket.destroy());
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

beforeAll(async () => {
  ports = [await listen(), await listen()];
});
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  rmSync(work, { recursive: true, force: true });
});

const CHECKS = `
import errno, json, socket, sys
out = {}
def try_(name, fn):
    try:
        fn()
        out[name] = 'ok'
    except OSError as error:
        out[name] = errno.errorcode.get(error.errno, error.errno)
def connect(port):
    s = socket.socket()
    s.settimeout(10)
    s.connect(('127.0.0.1', port))
    s.close()
def bind(port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', port))
    s.close()
calls = {'connect': connect, 'bind': bind, 'bind-udp': lambda port: bind(port, socket.SOCK_DGRAM)}
for what in sys.argv[1:]:
    kind, port = what.split(':')
    try_(what, lambda: calls[kind](int(port)))
try:
    out['hosts'] = [line for line in open('/etc/hosts').read().split('\\n') if line.split()[1:2] == ['localhost']]
except OSError as error:
    out['hosts'] = errno.errorcode.get(error.errno, error.errno)
print(json.dumps(out))
`;

/**
 * Runs the checks (`connect:PORT`, `bind:PORT`, `bind-udp:PORT`) in a sandbox with `inner`'s
 * policy (a builder chain as text) started inside one built by `outer`.
 */
async function nested(
  outer: (builder: ReturnType<typeof systemBuilder>) => ReturnType<typeof systemBuilder>,
  inner: string,
  checks: string[],
): Promise<Record<string, unknown>> {
  const script = join(work, `inner-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    script,
    `import { Sandbox } from ${JSON.stringify(dist)};
const result = await Sandbox.builder().fsRead(...${JSON.stringify(SYSTEM_READ)})${inner}
  .build()
  .run([${JSON.stringify(PYTHON)}, '-c', ${JSON.stringify(CHECKS)}, ...${JSON.stringify(checks)}], { encoding: 'utf8', timeout: 60_000 });
process.stdout.write(result.stdout);
process.stderr.write(result.stderr);
process.exit(result.exitCode ?? 1);
`,
  );
  const result = await outer(
    systemBuilder().fsRead(REPOSITORY, process.execPath, work).fsWrite('/dev/null'),
  )
    .build()
    .run([process.execPath, script], { encoding: 'utf8', timeout: 120_000 });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return JSON.parse(result.stdout);
}

describe('a sandbox inside a supervised sandbox, on the network', () => {
  it('connects only where both allow, its host names resolved and pinned by the outer supervisor', async () => {
    const [near, far] = ports as [number, number];
    const outcome = await nested(
      // A host name makes the outer filter notify opens (the inner /etc/hosts).
      (builder) => builder.netAllow(`127.0.0.1:${near}`).hostname('outer'),
      `.netAllow('localhost:${near}', '127.0.0.1:${far}')`,
      [`connect:${near}`, `connect:${far}`],
    );
    expect(outcome).toEqual({
      // Its rule names localhost: resolved, it allows 127.0.0.1.
      [`connect:${near}`]: 'ok',
      // Its own rule allows it; the outer sandbox's does not.
      [`connect:${far}`]: 'EACCES',
      // Its /etc/hosts gives localhost the pinned address (added last, tab-separated).
      hosts: ['127.0.0.1\tlocalhost'],
    });
  }, 180_000);

  it('binds only ports both sandboxes allow', async () => {
    // Ports that are free now (the kernel's pick, released).
    const free = await Promise.all([0, 1, 2].map(() => listen()));
    await Promise.all(
      servers.splice(-3).map((server) => new Promise((resolve) => server.close(resolve))),
    );
    const [allowed, deniedOutside, notAllowedInside] = free as [number, number, number];
    // Both have an address rule (TCP and UDP): both are supervised, the
    // inner one by the outer supervisor, whose binds module its UDP binds
    // and TCP binds (a deny list around it) go to.
    const rule = `127.0.0.1:${ports[0]}`;
    const outcome = await nested(
      (builder) => builder.netAllow(rule).netDenyBind(`${deniedOutside}`),
      `.netAllow('${rule}').netAllowBind('${allowed}', '${deniedOutside}')`,
      [allowed, deniedOutside, notAllowedInside].flatMap((port) => [
        `bind:${port}`,
        `bind-udp:${port}`,
      ]),
    );
    expect(outcome).toMatchObject({
      [`bind:${allowed}`]: 'ok',
      [`bind-udp:${allowed}`]: 'ok',
      // Its own rules allow it; the outer sandbox's deny list does not.
      [`bind:${deniedOutside}`]: 'EACCES',
      [`bind-udp:${deniedOutside}`]: 'EACCES',
      [`bind:${notAllowedInside}`]: 'EACCES',
      [`bind-udp:${notAllowedInside}`]: 'EACCES',
    });
  }, 180_000);
});
