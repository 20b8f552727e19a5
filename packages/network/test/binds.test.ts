// Bind rules (netAllowBind, netDenyBind) and portRemap, against the kernel:
// real sockets on loopback, binds made by the sandbox's reaper.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSockaddrIn, encodeSockaddrIn6 } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dropPortSpace,
  PortSpace,
  portSpaceOf,
  realDestination,
  translateProcNet,
} from '../src/port-space.js';
import { PRELUDE, PYTHON, Sandbox, SYSTEM_READ, udpServer, until } from './helpers.js';

/** Lets UDP sockets exist in the sandbox (a UDP rule); nothing is sent to it. */
const UDP_RULE = 'udp://127.0.0.1:9';

interface Rules {
  /** netAllow (default: a UDP rule alone). */
  allow?: string[];
  allowBind?: string[];
  denyBind?: string[];
  remap?: boolean;
  read?: string[];
}

function sandbox(rules: Rules) {
  let builder = Sandbox.builder()
    .fsRead(...SYSTEM_READ, '/proc', ...(rules.read ?? []))
    .netAllow(...(rules.allow ?? [UDP_RULE]))
    .netConnect({ from: 1, to: 65535 });
  if (rules.allowBind) builder = builder.netAllowBind(...rules.allowBind);
  if (rules.denyBind) builder = builder.netDenyBind(...rules.denyBind);
  if (rules.remap) builder = builder.portRemap();
  return builder.build();
}

async function runPython(script: string, rules: Rules, args: string[] = []): Promise<unknown> {
  const result = await sandbox(rules).run([PYTHON, '-c', script, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.exitCode !== 0) throw new Error(`python exited ${result.exitCode}: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Binds a TCP and a UDP socket to each port given, reporting the port bound or the errno. */
const BINDS = `${PRELUDE}
def bind(kind, port):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(('127.0.0.1', port))
    return 'bound' if port != 0 or s.getsockname()[1] > 0 else 'unbound'
for port in sys.argv[1:]:
    try_('tcp ' + port, lambda: bind(socket.SOCK_STREAM, int(port)))
    try_('udp ' + port, lambda: bind(socket.SOCK_DGRAM, int(port)))
print(json.dumps(out))`;

/** Ports free on loopback now (for TCP and UDP), distinct. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}

function outcomes(ports: number[], tcp: string, udp: string): Record<string, string> {
  return Object.fromEntries(
    ports.flatMap((port) => [
      [`tcp ${port}`, tcp],
      [`udp ${port}`, udp],
    ]),
  );
}

describe('bind rules', () => {
  it('bind only the allowed ports, TCP and UDP; none by default', async () => {
    const [ok, other] = await freePorts(2);
    const args = [String(ok), String(other)];
    expect(await runPython(BINDS, {}, [...args, '0'])).toEqual(
      outcomes([ok!, other!, 0], 'EACCES', 'EACCES'),
    );
    expect(await runPython(BINDS, { allowBind: [String(ok)] }, args)).toEqual({
      ...outcomes([ok!], 'bound', 'bound'),
      ...outcomes([other!], 'EACCES', 'EACCES'),
    });
    expect(await runPython(BINDS, { allowBind: [`udp://${ok}`] }, args)).toEqual({
      ...outcomes([ok!], 'EACCES', 'bound'),
      ...outcomes([other!], 'EACCES', 'EACCES'),
    });
    // Port 0 (an ephemeral port) is a port like the others.
    expect(await runPython(BINDS, { allowBind: ['0'] }, [String(ok), '0'])).toEqual({
      ...outcomes([ok!], 'EACCES', 'EACCES'),
      ...outcomes([0], 'bound', 'bound'),
    });
  });

  it('leaves TCP allow rules to Landlock: no bind is notified without UDP or remapping', async () => {
    const notified = async (box: ReturnType<typeof Sandbox.builder>) =>
      (await box.build().describe()).seccomp.notified.map(({ syscall }) => syscall);
    const base = () => Sandbox.builder().fsRead(...SYSTEM_READ);
    expect(await notified(base().netAllowBind('6379'))).not.toContain('bind');
    expect(await notified(base().netAllowBind('6379').netAllow(UDP_RULE))).toContain('bind');
    expect(await notified(base().netAllowBind('6379').portRemap())).toContain('bind');
    expect(await notified(base().netDenyBind('22'))).toContain('bind');
  });

  it('bind any port but the denied ones', async () => {
    const [ok, denied] = await freePorts(2);
    const args = [String(ok), String(denied), '0'];
    expect(await runPython(BINDS, { denyBind: [String(denied)] }, args)).toEqual({
      ...outcomes([ok!, 0], 'bound', 'bound'),
      ...outcomes([denied!], 'EACCES', 'EACCES'),
    });
    expect(await runPython(BINDS, { denyBind: [`tcp://${denied}`] }, args)).toEqual({
      ...outcomes([ok!, 0], 'bound', 'bound'),
      ...outcomes([denied!], 'EACCES', 'bound'),
    });
  });

  it('keeps ports below 1024 privileged though the supervisor is root', async () => {
    // A port below 1024 that this process (the supervisor's) can bind: what
    // a bind made with its authority would get.
    const port = await privilegedPortThisProcessBinds();
    if (port === null) {
      console.warn('skipped: this process cannot bind a port below 1024 (not root?)');
      return;
    }
    const args = [String(port)];
    expect(await runPython(BINDS, { allowBind: [String(port)] }, args)).toEqual(
      outcomes([port], 'EACCES', 'EACCES'),
    );
    expect(await runPython(BINDS, { denyBind: ['1'] }, args)).toEqual(
      outcomes([port], 'EACCES', 'EACCES'),
    );
    expect(await runPython(BINDS, { allowBind: [String(port)], remap: true }, args)).toEqual(
      outcomes([port], 'EACCES', 'EACCES'),
    );
  });
});

async function privilegedPortThisProcessBinds(): Promise<number | null> {
  const start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  if (start <= 1) return null;
  for (let port = Math.min(start, 1024) - 1; port > 0; port--) {
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
  return null;
}

// A thread flips the port of the address being bound between an allowed
// and a denied one: no socket may end up on the denied port.
const RACER = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in target;
static volatile int stop;
static unsigned short ok_port, bad_port;

static void *flip(void *unused) {
  (void)unused;
  while (!stop) {
    target.sin_port = htons(bad_port);
    __asm__ volatile("" ::: "memory");
    target.sin_port = htons(ok_port);
    __asm__ volatile("" ::: "memory");
  }
  return NULL;
}

int main(int argc, char **argv) {
  int type = strcmp(argv[1], "tcp") == 0 ? SOCK_STREAM : SOCK_DGRAM;
  ok_port = atoi(argv[2]);
  bad_port = atoi(argv[3]);
  int rounds = atoi(argv[4]);
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  pthread_t thread;
  pthread_create(&thread, NULL, flip, NULL);
  int good = 0, bad = 0, refused = 0, other = 0;
  for (int i = 0; i < rounds; i++) {
    int fd = socket(AF_INET, type, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&target, sizeof target) == 0) {
      struct sockaddr_in name;
      socklen_t length = sizeof name;
      getsockname(fd, (struct sockaddr *)&name, &length);
      if (ntohs(name.sin_port) == bad_port) bad++;
      else good++;
    } else if (errno == EACCES) refused++;
    else {
      if (!other) fprintf(stderr, "errno %d\n", errno);
      other++;
    }
    close(fd);
  }
  stop = 1;
  pthread_join(thread, NULL);
  printf("%d %d %d %d\n", good, bad, refused, other);
  return 0;
}
`;

describe('a thread rewriting the address during the bind', () => {
  let work: string;
  let racer: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'sandlock-bind-race-'));
    writeFileSync(join(work, 'racer.c'), RACER);
    racer = join(work, 'racer');
    execFileSync('gcc', ['-O2', '-pthread', '-o', racer, join(work, 'racer.c')]);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  for (const [protocol, rules] of [
    ['udp', (ok: number) => ({ allowBind: [`udp://${ok}`] })],
    ['tcp', (_ok: number, bad: number) => ({ denyBind: [String(bad)] })],
  ] as const) {
    it(`never binds the denied port (${protocol})`, async () => {
      const [ok, bad] = await freePorts(2);
      const rounds = 2000;
      const result = await sandbox({ ...rules(ok!, bad!), read: [work] }).run(
        [racer, protocol, String(ok), String(bad), String(rounds)],
        { encoding: 'utf8', timeout: 120_000 },
      );
      expect(result.stderr).toBe('');
      const [good, denied, refused, other] = result.stdout.trim().split(' ').map(Number);
      expect(good! + denied! + refused! + other!).toBe(rounds);
      expect(denied).toBe(0);
      expect(other).toBe(0);
      // Both outcomes happened: the port did change under the calls.
      expect(good).toBeGreaterThan(0);
      expect(refused).toBeGreaterThan(0);
    });
  }
});

describe('portRemap', () => {
  let host: Server;
  let taken: number;

  beforeAll(async () => {
    host = createServer((socket) => socket.end('host\n'));
    await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
    taken = (host.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => host.close(() => resolve())));

  /** A server on the port given: what getsockname says, and what it takes to bind. */
  const SERVER = `${PRELUDE}
port = int(sys.argv[1])
s = socket.socket()
try_('bind', lambda: s.bind(('127.0.0.1', port)))
if out['bind'] is None:
    s.listen()
    out['name'] = s.getsockname()[1]
    # getsockname's length, as move_addr_to_user() writes it: the whole name's
    # length whatever room the caller gave, and a name cut to that room.
    name = ctypes.create_string_buffer(16)
    size = ctypes.c_uint32(4)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.getsockname(s.fileno(), name, ctypes.byref(size))
    out['short'] = [size.value, struct.unpack('!H', name.raw[2:4])[0], name.raw[4:8].hex()]
    c = socket.socket()
    c.connect(('127.0.0.1', port))
    s.settimeout(20)
    a, _ = s.accept()
    c.sendall(b'mine')
    out['reached'] = a.recv(4).decode()
    out['peer'] = c.getpeername()[1]
    listening = [line.split()[1] for line in open('/proc/net/tcp').read().splitlines()[1:] if line.split()[3] == '0A']
    out['/proc/net/tcp'] = [int(local.split(':')[1], 16) for local in listening]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try_('udp', lambda: u.bind(('127.0.0.1', port)))
    out['udp name'] = u.getsockname()[1]
print(json.dumps(out))`;

  it('binds a port taken on the host to a free one, which the sandbox sees as its own', async () => {
    // Loopback reachable (TCP and UDP), for a client of its own server.
    const box = sandbox({ allow: ['127.0.0.1'], allowBind: [String(taken)], remap: true });
    const spawned = await box.spawn([PYTHON, '-c', SERVER, String(taken)], { stdio: 'pipe' });
    let stdout = '';
    spawned.stdout!.on('data', (chunk) => {
      stdout += chunk;
    });
    let stderr = '';
    spawned.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    const status = await spawned.wait();
    expect({ exit: status.exitCode, stderr }).toEqual({ exit: 0, stderr: '' });
    const outcome = JSON.parse(stdout) as Record<string, unknown>;
    expect(outcome).toEqual({
      bind: null,
      name: taken,
      short: [16, taken, '00000000'],
      reached: 'mine',
      peer: taken,
      '/proc/net/tcp': [taken],
      udp: null,
      'udp name': taken,
    });
    await until(() => spawned.ports.length === 2);
    const tcp = spawned.ports.find((port) => port.protocol === 'tcp')!;
    expect(tcp.virtual).toBe(taken);
    expect(tcp.real).not.toBe(taken);
    // UDP's port was free on the host: the same.
    expect(spawned.ports).toContainEqual({ protocol: 'udp', virtual: taken, real: taken });
  });

  it('sends a datagram to its own remapped UDP port to the real one', async () => {
    // The host holds the UDP port: the sandbox's bind of it is remapped.
    const host = await udpServer();
    try {
      const script = `${PRELUDE}
port = int(sys.argv[1])
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(('127.0.0.1', port))
server.settimeout(20)
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.sendto(b'sendto', ('127.0.0.1', port))
out['sendto'] = server.recv(16).decode()
client.sendmsg([b'sendmsg'], [], 0, ('127.0.0.1', port))
out['sendmsg'] = server.recv(16).decode()
client.connect(('127.0.0.1', port))
client.send(b'connected')
out['connected'] = server.recv(16).decode()
out['peer'] = client.getpeername()[1] == port
print(json.dumps(out))`;
      const outcome = await runPython(
        script,
        { allow: ['udp://127.0.0.1'], allowBind: [`udp://${host.port}`], remap: true },
        [String(host.port)],
      );
      expect(outcome).toEqual({
        sendto: 'sendto',
        sendmsg: 'sendmsg',
        connected: 'connected',
        peer: true,
      });
      expect(host.received).toEqual([]);
    } finally {
      await host.close();
    }
  });

  it('applies the bind rules to the virtual port', async () => {
    const [free] = await freePorts(1);
    // The attack: a port outside the rules, taken on the host or not, or an
    // ephemeral port (which the reaper's domain allows for remapping).
    const args = [String(taken), String(free), '0'];
    expect(await runPython(BINDS, { allowBind: [String(taken + 1)], remap: true }, args)).toEqual(
      outcomes([taken, free!, 0], 'EACCES', 'EACCES'),
    );
  });

  it('gives two sandboxes the same virtual port', async () => {
    const script = `${PRELUDE}
s = socket.socket()
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen()
print(json.dumps({'name': s.getsockname()[1]}), flush=True)
sys.stdin.read()`;
    const box = sandbox({ allowBind: [String(taken)], remap: true });
    const first = await box.spawn([PYTHON, '-c', script, String(taken)], { stdio: 'pipe' });
    const second = await box.spawn([PYTHON, '-c', script, String(taken)], { stdio: 'pipe' });
    const lines = await Promise.all(
      [first, second].map(
        (spawned) =>
          new Promise<string>((resolve) => {
            let text = '';
            spawned.stdout!.on('data', (chunk) => {
              text += chunk;
              if (text.includes('\n')) resolve(text);
            });
          }),
      ),
    );
    for (const line of lines) expect(JSON.parse(line)).toEqual({ name: taken });
    await until(() => first.ports.length > 0 && second.ports.length > 0);
    const [a, b] = [first.ports[0]!, second.ports[0]!];
    expect(a.virtual).toBe(taken);
    expect(b.virtual).toBe(taken);
    expect(new Set([a.real, b.real, taken]).size).toBe(3);
    // What `sandlock ps` lists: each sandbox's mapping, in the registry.
    const listed = async () =>
      Object.fromEntries((await Sandbox.list()).map((entry) => [entry.pid, entry.ports]));
    let entries = await listed();
    for (let tries = 0; tries < 200 && entries[first.pid]?.length !== 1; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      entries = await listed();
    }
    expect(entries[first.pid]).toEqual([{ protocol: 'tcp', virtual: taken, real: a.real }]);
    expect(entries[second.pid]).toEqual([{ protocol: 'tcp', virtual: taken, real: b.real }]);
    first.stdin!.end();
    second.stdin!.end();
    await Promise.all([first.wait(), second.wait()]);
  });
});

describe('/proc/net as the sandbox sees it', () => {
  it('shows the virtual port of a remapped socket, local and as a loopback peer', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const real = (server.address() as { port: number }).port;
    const client = await new Promise<Socket>((resolve) => {
      const socket = connect(real, '127.0.0.1', () => resolve(socket));
    });
    try {
      const text = readFileSync('/proc/net/tcp', 'utf8');
      const virtual = real === 4321 ? 4322 : 4321;
      const space = new PortSpace();
      space.record('tcp', virtual, real);
      const hex = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
      const before = text.split('\n').filter((line) => line.includes(hex(real)));
      const after = translateProcNet(text, space, 'tcp').split('\n');
      expect(before.length).toBeGreaterThanOrEqual(2); // the listener, the client's peer
      expect(after.filter((line) => line.includes(hex(real)))).toEqual([]);
      expect(after.filter((line) => line.includes(hex(virtual))).length).toBe(before.length);
      expect(after.length).toBe(text.split('\n').length);
      // Other lines are left as they are; UDP's table is another.
      expect(translateProcNet(text, space, 'udp')).toBe(text);
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('connections from the sandbox to its own virtual ports', () => {
  it('reach the real port on loopback addresses only', () => {
    const session = { id: -7 };
    portSpaceOf(session).record('tcp', 8080, 41000);
    const port = (address: Buffer) => address.readUInt16BE(2);
    try {
      const to = (address: string, p: number) =>
        port(realDestination(session, 'tcp', encodeSockaddrIn({ address, port: p })));
      expect(to('127.0.0.1', 8080)).toBe(41000);
      expect(to('127.1.2.3', 8080)).toBe(41000);
      expect(to('10.0.0.1', 8080)).toBe(8080);
      expect(to('127.0.0.1', 8081)).toBe(8080 + 1);
      const to6 = (address: string) =>
        port(realDestination(session, 'tcp', encodeSockaddrIn6({ address, port: 8080 })));
      expect(to6('::1')).toBe(41000);
      expect(to6('::ffff:127.0.0.1')).toBe(41000);
      expect(to6('fd00::1')).toBe(8080);
      expect(
        port(
          realDestination(session, 'udp', encodeSockaddrIn({ address: '127.0.0.1', port: 8080 })),
        ),
      ).toBe(8080);
    } finally {
      dropPortSpace(session);
    }
    expect(
      port(realDestination(session, 'tcp', encodeSockaddrIn({ address: '127.0.0.1', port: 8080 }))),
    ).toBe(8080);
  });
});
