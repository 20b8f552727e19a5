// Named Unix sockets: reached only where the policy lets the sandbox write,
// or where `unix` says; connected by the reaper (the server sees a process
// of the sandbox), sent with the sandbox's own descriptors and credentials.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AF_UNIX, SO_PEERCRED, SOCK_DGRAM, SOL_SOCKET, trySyscall } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRELUDE, PYTHON, Sandbox, SYSTEM_READ } from './helpers.js';

interface UnixServer {
  connections: number;
  /** SO_PEERCRED pid of each connection. */
  readonly peers: number[];
  close(): Promise<void>;
}

async function unixServer(path: string): Promise<UnixServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    counted.connections++;
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    const credentials = Buffer.alloc(12);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(12);
    trySyscall('getsockopt', fd, SOL_SOCKET, SO_PEERCRED, credentials, length);
    counted.peers.push(credentials.readInt32LE(0));
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const counted: UnixServer = {
    connections: 0,
    peers: [],
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return counted;
}

/** A Unix datagram socket bound at `path`; `received()` drains what came. */
function datagramServer(path: string): { received(): string[]; close(): void } {
  const fd = trySyscall('socket', AF_UNIX, SOCK_DGRAM | 0o4000, 0); // SOCK_NONBLOCK
  const address = Buffer.alloc(110);
  address.writeUInt16LE(AF_UNIX, 0);
  address.write(path, 2);
  if (trySyscall('bind', fd, address, 2 + Buffer.byteLength(path) + 1) < 0) throw new Error('bind');
  const got: string[] = [];
  return {
    received() {
      const buffer = Buffer.alloc(256);
      for (;;) {
        const length = trySyscall('recvfrom', fd, buffer, buffer.length, 0, null, null);
        if (length < 0) return got;
        got.push(buffer.toString('utf8', 0, length));
      }
    },
    close() {
      trySyscall('close', fd);
    },
  };
}

let dir: string;
let readOnly: string;
let writable: string;
let named: string;
const servers: UnixServer[] = [];
let ro: UnixServer;
let rw: UnixServer;
let byName: UnixServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sandlock-unix-'));
  readOnly = join(dir, 'ro');
  writable = join(dir, 'rw');
  named = join(dir, 'named');
  for (const sub of [readOnly, writable, named]) mkdirSync(sub);
  ro = await unixServer(join(readOnly, 'daemon.sock'));
  rw = await unixServer(join(writable, 'own.sock'));
  byName = await unixServer(join(named, 'allowed.sock'));
  servers.push(ro, rw, byName);
  writeFileSync(join(writable, 'secret.txt'), 'from the sandbox');
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function run(
  script: string,
  extra: (builder: ReturnType<typeof Sandbox.builder>) => ReturnType<typeof Sandbox.builder>,
  args: string[] = [],
) {
  const result = await extra(
    Sandbox.builder()
      .fsRead(...SYSTEM_READ, readOnly, named)
      .fsWrite(writable),
  )
    .build()
    .run([PYTHON, '-c', script, ...args], { encoding: 'utf8', timeout: 60_000, cwd: writable });
  if (result.exitCode !== 0) throw new Error(`python exited ${result.exitCode}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

const CONNECTS = `${PRELUDE}
def dial(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.close()
for name, path in zip(['read-only', 'writable', 'relative', 'named'], sys.argv[1:]):
    try_(name, lambda: dial(path))
print(json.dumps(out))`;

describe('named Unix sockets', () => {
  it('connect: refused under a read-only grant, allowed under a write grant or by --unix', async () => {
    const paths = [
      join(readOnly, 'daemon.sock'),
      join(writable, 'own.sock'),
      'own.sock',
      join(named, 'allowed.sock'),
    ];
    expect(await run(CONNECTS, (b) => b, paths)).toEqual({
      'read-only': 'EACCES',
      writable: null,
      relative: null,
      named: 'EACCES',
    });
    expect(await run(CONNECTS, (b) => b.unix(join(named, 'allowed.sock')), paths)).toEqual({
      'read-only': 'EACCES',
      writable: null,
      relative: null,
      named: null,
    });
    expect(ro.connections).toBe(0);
    expect(rw.connections).toBe(4);
    expect(byName.connections).toBe(1);
    // The connect was made by a process of the sandbox (the reaper), not the supervisor.
    expect(rw.peers.length).toBe(4);
    for (const pid of [...rw.peers, ...byName.peers]) {
      expect(pid).toBeGreaterThan(0);
      expect(pid).not.toBe(process.pid);
    }
  });

  it('sendto and sendmsg to a datagram socket: the same rule', async () => {
    const denied = datagramServer(join(readOnly, 'log.sock'));
    const allowed = datagramServer(join(writable, 'log.sock'));
    try {
      const script = `${PRELUDE}
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try_('sendto read-only', lambda: s.sendto(b'one', sys.argv[1]))
try_('sendmsg read-only', lambda: s.sendmsg([b'two'], [], 0, sys.argv[1]))
try_('sendto writable', lambda: s.sendto(b'three', sys.argv[2]))
try_('sendmsg relative', lambda: s.sendmsg([b'four'], [], 0, 'log.sock'))
print(json.dumps(out))`;
      const outcome = await run(script, (b) => b, [
        join(readOnly, 'log.sock'),
        join(writable, 'log.sock'),
      ]);
      expect(outcome).toEqual({
        'sendto read-only': 'EACCES',
        'sendmsg read-only': 'EACCES',
        'sendto writable': 5,
        'sendmsg relative': 4,
      });
      expect(denied.received()).toEqual([]);
      expect(allowed.received()).toEqual(['three', 'four']);
    } finally {
      denied.close();
      allowed.close();
    }
  });

  it('a sandbox that no supervisor serves makes no Unix socket but a connected pair', async () => {
    const sandbox = Sandbox.builder()
      .fsRead(...SYSTEM_READ, readOnly)
      .build();
    expect((await sandbox.describe()).supervisor).toBe(false);
    const script = `${PRELUDE}
try_('socket', lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).fileno() >= 0)
try_('datagram pair', lambda: len(socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)))
try_('stream pair', lambda: len(socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)))
print(json.dumps(out))`;
    const result = await sandbox.run([PYTHON, '-c', script], { encoding: 'utf8', timeout: 60_000 });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({
      socket: 'EACCES',
      'datagram pair': 'EACCES',
      'stream pair': 2,
    });
    expect(ro.connections).toBe(0);
  });

  it('sends descriptors by every way a Unix message goes: pathname, abstract, connected, many', async () => {
    const script = `${PRELUDE}
import array, os
fd = os.open('secret.txt', os.O_RDONLY)
def rights(fds):
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))]
def read_all(ancillary):
    got = []
    for level, kind, data in ancillary:
        if kind == socket.SCM_RIGHTS:
            for number in array.array('i', data):
                got.append(os.pread(number, 100, 0).decode())
                os.close(number)
    return got
def check(receiver, size=16):
    receiver.settimeout(10)
    message, ancillary, flags, _ = receiver.recvmsg(size, 8192)
    return [len(message), read_all(ancillary), flags]
server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
server.bind('dgram.sock')
client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try_('pathname', lambda: client.sendmsg([b'p'], rights([fd]), 0, 'dgram.sock'))
out['pathname got'] = check(server)
abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
abstract.bind(b'\\0sandlock-rights-%d' % os.getpid())
try_('abstract', lambda: client.sendmsg([b'a'], rights([fd, fd]), 0, abstract.getsockname()))
out['abstract got'] = check(abstract)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
many = [os.dup(fd) for _ in range(252)]
try_('many on a stream', lambda: a.sendmsg([b'x' * 100000], rights(many)))
out['many got'] = check(b, 100000)
for number in many: os.close(number)
s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try_('large datagram', lambda: s1.sendmsg([b'y' * 20000], rights([fd])))
try_('bad descriptor', lambda: s1.sendmsg([b'z'], rights([1000])))
print(json.dumps(out))`;
    const outcome = await run(script, (b) => b);
    const secret = 'from the sandbox';
    const many = outcome['many got'] as [number, string[], number];
    expect({ ...outcome, 'many got': [many[0] > 0 && many[0] < 100000, many[1].length] }).toEqual({
      pathname: 1,
      'pathname got': [1, [secret], 0],
      abstract: 1,
      'abstract got': [1, [secret, secret], 0],
      // A stream sends what fits one request: a short write, the descriptors with it.
      'many on a stream': many[0],
      'many got': [true, 252],
      'large datagram': 'EMSGSIZE',
      'bad descriptor': 'EBADF',
    });
    expect(new Set(many[1])).toEqual(new Set([secret]));
  });

  // A message with descriptors is sent by the reaper (rights.ts), which the
  // kernel holds to the sandbox's limit on descriptors in flight: a
  // receiver with SO_PASSCRED sees the reaper's pid (the program's parent)
  // with the program's uid and gid, and credentials the program gives
  // beside descriptors are refused (the reaper may not claim its pid).
  it('SCM_RIGHTS carry the sandbox’s descriptors; SCM_CREDENTIALS only its own identity', async () => {
    const script = `${PRELUDE}
import array, os
supervisor = int(sys.argv[1])
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
b.settimeout(10)
fd = os.open('secret.txt', os.O_RDONLY)
# A number the supervisor has open too, for something else.
os.dup2(fd, 9); os.close(fd)
try_('rights', lambda: a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [9]))]))
message, ancillary, flags, _ = b.recvmsg(16, 4096)
got = []
for level, kind, data in ancillary:
    if kind == socket.SCM_RIGHTS:
        got.append(os.read(array.array('i', data)[0], 100).decode())
    if kind == socket.SCM_CREDENTIALS:
        pid, uid, gid = struct.unpack('iII', data)
        who = {os.getpid(): 'mine', os.getppid(): 'the reaper', supervisor: 'the supervisor'}
        out['credentials with rights'] = [who.get(pid, pid), uid == os.getuid(), gid == os.getgid()]
out['received'] = got
spoof = struct.pack('iII', supervisor, os.getuid(), os.getgid())
try_('spoofed pid', lambda: a.sendmsg([b'y'], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, spoof)]))
own = struct.pack('iII', os.getpid(), os.getuid(), os.getgid())
try_('own pid', lambda: a.sendmsg([b'z'], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, own)]))
message, ancillary, flags, _ = b.recvmsg(16, 4096)
out['after'] = message.decode()
for level, kind, data in ancillary:
    if kind == socket.SCM_CREDENTIALS:
        out['credentials alone'] = struct.unpack('iII', data)[0] == os.getpid()
fd = os.open('secret.txt', os.O_RDONLY)
try_('own pid with rights', lambda: a.sendmsg([b'w'], [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, own), (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [fd]))]))
print(json.dumps(out))`;
    const outcome = await run(script, (b) => b, [String(process.pid)]);
    expect(outcome).toEqual({
      rights: 1,
      received: ['from the sandbox'],
      'credentials with rights': ['the reaper', true, true],
      'spoofed pid': 'EPERM',
      'own pid': 1,
      after: 'z',
      'credentials alone': true,
      'own pid with rights': 'EPERM',
    });
  });
});
