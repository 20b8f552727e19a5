// Binds, Unix sockets and datagrams through the supervisor against a process
// alone under the same Landlock domain (differential.ts): where the policy's
// rules allow a call, the supervisor's answer is the kernel's; where they do
// not, EACCES.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bindsOf, mayBind, parsePolicy } from '@sandlock/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bothWays } from './differential.js';
import { PRELUDE, PYTHON, SYSTEM_READ, type UdpServer, udpServer } from './helpers.js';

/** Lets UDP sockets exist (a UDP rule); nothing is sent to it. */
const UDP_RULE = 'udp://127.0.0.1:9';

async function listening(host: string, port = 0): Promise<Server> {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return server;
}

const portOf = (server: Server) => (server.address() as { port: number }).port;
const stop = (server: Server) => new Promise((resolve) => server.close(resolve));

/** Ports free on loopback now (TCP and UDP, IPv4 and IPv6), distinct. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const server = await listening('127.0.0.1');
    const port = portOf(server);
    await stop(server);
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}

type Variant = 'plain' | 'short' | 'other-family' | 'unspec';
interface BindCase {
  readonly protocol: 'tcp' | 'udp';
  readonly family: 4 | 6;
  readonly port: number;
  readonly variant: Variant;
}

/** Each case's bind on a fresh socket, by libc with the bytes given: 'bound' or the errno's name. */
const BINDS = `${PRELUDE}
libc = ctypes.CDLL(None, use_errno=True)
def v4(port, family=socket.AF_INET, ip=bytes([127, 0, 0, 1])):
    return struct.pack('<H', family) + struct.pack('!H', port) + ip + bytes(8)
def v6(port):
    return struct.pack('<H', socket.AF_INET6) + struct.pack('!HI', port, 0) + bytes(15) + b'\\x01' + bytes(4)
result = []
for protocol, family, port, variant in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET,
                      socket.SOCK_STREAM if protocol == 'tcp' else socket.SOCK_DGRAM)
    own, other = (v6(port), v4(port)) if family == 6 else (v4(port), v6(port))
    address = {'plain': own, 'short': own[:15] if family == 4 else own[:23],
               'other-family': other, 'unspec': v4(port, socket.AF_UNSPEC, bytes(4))}[variant]
    if libc.bind(s.fileno(), address, len(address)) == 0:
        result.append('bound')
    else:
        result.append(errno.errorcode[ctypes.get_errno()])
    s.close()
print(json.dumps(result))`;

/**
 * What the supervisor must answer, given the kernel's answer alone: a
 * malformed address and a TCP bind under an allow list are the kernel's
 * (Landlock's, in the same domain); else the rules, then, under portRemap,
 * a port taken on the host bound elsewhere.
 */
function expected(policy: Record<string, unknown>, bind: BindCase, alone: string): string {
  if (bind.variant === 'short' || bind.variant === 'other-family') return alone;
  const binds = bindsOf(parsePolicy(policy));
  if (bind.protocol === 'tcp' && !binds.tcpOnBehalf) return alone;
  if (!mayBind(binds, bind.protocol, bind.port)) return 'EACCES';
  if (binds.remap && alone === 'EADDRINUSE') return 'bound';
  return alone;
}

describe('binds made by the reaper, against the same Landlock domain alone', () => {
  let taken: Server[];
  let port: { allowed: number; denied: number; taken: number };

  beforeAll(async () => {
    const tcp4 = await listening('127.0.0.1');
    const held = portOf(tcp4);
    const tcp6 = await listening('::1', held);
    taken = [tcp4, tcp6];
    const [allowed, denied] = await freePorts(2);
    port = { allowed: allowed!, denied: denied!, taken: held };
  });
  afterAll(async () => {
    await Promise.all(taken.map(stop));
  });

  function cases(): BindCase[] {
    const out: BindCase[] = [];
    for (const protocol of ['tcp', 'udp'] as const) {
      for (const family of [4, 6] as const) {
        for (const p of [port.allowed, port.denied, port.taken, 80, 0]) {
          out.push({ protocol, family, port: p, variant: 'plain' });
        }
        for (const variant of ['short', 'other-family'] as const) {
          out.push({ protocol, family, port: port.allowed, variant });
          out.push({ protocol, family, port: port.denied, variant });
        }
      }
      out.push({ protocol, family: 4, port: port.allowed, variant: 'unspec' });
      out.push({ protocol, family: 4, port: port.denied, variant: 'unspec' });
    }
    return out;
  }

  const policies = () => ({
    'deny list': { netAllow: [UDP_RULE], netDenyBind: [`${port.denied}`, `udp://${port.taken}`] },
    'allow list with UDP': {
      netAllow: [UDP_RULE],
      netAllowBind: [`${port.allowed}`, '80', `udp://${port.taken}`, `tcp://${port.denied}`],
    },
    portRemap: {
      netAllow: [UDP_RULE],
      netAllowBind: [`${port.allowed}`, `${port.taken}`],
      portRemap: true,
    },
  });

  for (const name of ['deny list', 'allow list with UDP', 'portRemap'] as const) {
    it(`answers as the kernel where the rules allow, EACCES where not (${name})`, async () => {
      // The host holds the taken port for UDP too, both families.
      const held = await Promise.all([bindUdp('udp4', port.taken), bindUdp('udp6', port.taken)]);
      {
        const list = cases();
        try {
          const policy = { fsRead: SYSTEM_READ, ...policies()[name] };
          const argv = [
            PYTHON,
            '-c',
            BINDS,
            JSON.stringify(list.map((c) => [c.protocol, c.family, c.port, c.variant])),
          ];
          const { supervised, alone } = (await bothWays(argv, policy)) as {
            supervised: string[];
            alone: string[];
          };
          const label = (c: BindCase) => `${c.protocol}${c.family} ${c.port} ${c.variant}`;
          const table = (answers: string[]) =>
            Object.fromEntries(list.map((c, index) => [label(c), answers[index]]));
          expect(table(supervised)).toEqual(
            table(list.map((c, index) => expected(policy, c, alone[index]!))),
          );
          // The kernel's own answers are among them: the comparison says something.
          expect(alone).toEqual(
            expect.arrayContaining(['bound', 'EADDRINUSE', 'EINVAL', 'EAFNOSUPPORT']),
          );
          expect(supervised).toContain('EACCES');
        } finally {
          await Promise.all(held.map((socket) => socket.close()));
        }
      }
    });
  }
});

async function bindUdp(type: 'udp4' | 'udp6', port: number): Promise<{ close(): Promise<void> }> {
  const { createSocket } = await import('node:dgram');
  const socket = createSocket(type);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, type === 'udp4' ? '127.0.0.1' : '::1', resolve);
  });
  return { close: () => new Promise((resolve) => socket.close(() => resolve())) };
}

describe('Unix sockets through the supervisor, against the kernel’s write rule', () => {
  let dir: string;
  let servers: Server[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sandlock-unix-diff-'));
    // A denied path beneath a granted one carves its tree (rules on each
    // entry: no new names there), so it has a tree of its own.
    for (const sub of ['rw', 'ro', 'carved', 'carved/denied']) mkdirSync(join(dir, sub));
    symlinkSync('../ro', join(dir, 'rw', 'link'));
    servers = [];
    for (const sub of ['rw', 'ro']) {
      const server = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => server.listen(join(dir, sub, 'server.sock'), resolve));
      servers.push(server);
    }
  });
  afterAll(async () => {
    await Promise.all(servers.map(stop));
    rmSync(dir, { recursive: true, force: true });
  });

  // Binds (stream and datagram), with the umask applied to the file's mode,
  // each file removed after; connects; and, for each connect's directory,
  // whether a socket file may be made there (a probe bind).
  const SCRIPT = `${PRELUDE}
import os
libc = ctypes.CDLL(None, use_errno=True)
os.umask(0o027)
def bind(path, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_UNIX, kind)
    try:
        s.bind(path)
        if isinstance(path, str) and path and path[0] != '\\0':
            mode = oct(os.lstat(path).st_mode & 0o777)
            os.unlink(path)
            return 'bound ' + mode
        return 'bound'
    finally:
        s.close()
def raw_bind(address):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if libc.bind(s.fileno(), address, len(address)) != 0:
            raise OSError(ctypes.get_errno(), 'bind')
        return 'bound'
    finally:
        s.close()
def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return 'connected'
    finally:
        s.close()
long = 'L' * 100
for path in ['rw/a.sock', 'ro/a.sock', 'carved/denied/a.sock', 'carved/a.sock', 'rw/link/a.sock', 'rel.sock', long,
             'rw/missing/a.sock', 'rw/server.sock', 'rw/new/', 'rw/link', 'ro']:
    try_('bind ' + path, lambda: bind(path if path in ('rel.sock', long) else sys.argv[1] + '/' + path))
try_('bind datagram rw', lambda: bind(sys.argv[1] + '/rw/d.sock', socket.SOCK_DGRAM))
try_('bind abstract', lambda: bind('\\0sandlock-diff-%d' % os.getpid()))
try_('autobind', lambda: raw_bind(struct.pack('<H', socket.AF_UNIX)))
try_('bind AF_INET address', lambda: raw_bind(struct.pack('<H', socket.AF_INET) + bytes(14)))
try_('bind empty path', lambda: raw_bind(struct.pack('<H', socket.AF_UNIX) + bytes(1)))
for path in ['rw/server.sock', 'ro/server.sock', 'rw/link/server.sock', 'rw/none.sock']:
    try_('connect ' + path, lambda: connect(sys.argv[1] + '/' + path))
    try_('probe ' + path, lambda: bind(sys.argv[1] + '/' + os.path.dirname(path) + '/probe.sock'))
print(json.dumps(out))`;

  it('binds and connects as a process alone would, the connects refused where no socket may be made', async () => {
    const policy = {
      fsRead: [...SYSTEM_READ, dir],
      fsWrite: [join(dir, 'rw'), join(dir, 'carved')],
      fsDeny: [join(dir, 'carved', 'denied')],
      cwd: join(dir, 'rw'),
    };
    const { supervised, alone } = (await bothWays([PYTHON, '-c', SCRIPT, dir], policy)) as {
      supervised: Record<string, unknown>;
      alone: Record<string, unknown>;
    };
    const binds = (answers: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(answers).filter(([key]) => !key.startsWith('connect ')));
    // Binds and probes: Landlock's LANDLOCK_ACCESS_FS_MAKE_SOCK alone, the
    // policy's fsWrite through the supervisor.
    expect(binds(supervised)).toEqual(binds(alone));
    for (const path of [
      'rw/server.sock',
      'ro/server.sock',
      'rw/link/server.sock',
      'rw/none.sock',
    ]) {
      const may = String(alone[`probe ${path}`]).startsWith('bound');
      expect({ path, answer: supervised[`connect ${path}`] }).toEqual({
        path,
        answer: may ? alone[`connect ${path}`] : 'EACCES',
      });
    }
    // What the kernel said alone covers each outcome the comparison is about.
    expect(alone).toMatchObject({
      'bind rw/a.sock': 'bound 0o750',
      'bind ro/a.sock': 'EACCES',
      'bind carved/denied/a.sock': 'EACCES',
      'bind rw/link/a.sock': 'EACCES',
      'bind rel.sock': 'bound 0o750',
      [`bind ${'L'.repeat(100)}`]: 'bound 0o750',
      'bind rw/missing/a.sock': 'ENOENT',
      'bind rw/server.sock': 'EADDRINUSE',
      'bind rw/new/': 'ENOENT',
      'bind abstract': 'bound',
      autobind: 'bound',
      'bind AF_INET address': 'EINVAL',
      'connect ro/server.sock': 'connected',
      'connect rw/none.sock': 'ENOENT',
    });
    expect(supervised).toMatchObject({
      'connect rw/server.sock': 'connected',
      'connect ro/server.sock': 'EACCES',
    });
  });
});

describe('datagrams through the supervisor, against the rules', () => {
  let allowed: UdpServer;
  let denied: UdpServer;
  let allowed6: UdpServer;

  beforeAll(async () => {
    [allowed, denied, allowed6] = await Promise.all([udpServer(), udpServer(), udpServer('udp6')]);
  });
  afterAll(async () => {
    await Promise.all([allowed.close(), denied.close(), allowed6.close()]);
  });

  /** Each case: [name, socket family, sockaddr as hex, allowed by the rules]. */
  function cases(): [string, 4 | 6, string, boolean][] {
    const v4 = (port: number, ip = [127, 0, 0, 1], family = 2) =>
      Buffer.concat([
        Buffer.from([family, 0]),
        Buffer.from([port >> 8, port & 0xff]),
        Buffer.from(ip),
        Buffer.alloc(8),
      ]);
    const v6 = (port: number, ip: number[]) =>
      Buffer.concat([
        Buffer.from([10, 0]),
        Buffer.from([port >> 8, port & 0xff]),
        Buffer.alloc(4),
        Buffer.from(ip),
        Buffer.alloc(4),
      ]);
    const mapped = [...Array(10).fill(0), 0xff, 0xff, 127, 0, 0, 1];
    const loopback6 = [...Array(15).fill(0), 1];
    const hex = (buffer: Buffer) => buffer.toString('hex');
    return [
      ['v4 allowed', 4, hex(v4(allowed.port)), true],
      ['v4 denied port', 4, hex(v4(denied.port)), false],
      ['v4 denied host', 4, hex(v4(allowed.port, [127, 0, 0, 2])), false],
      ['v4 AF_UNSPEC allowed', 4, hex(v4(allowed.port, [127, 0, 0, 1], 0)), true],
      ['v4 AF_UNSPEC denied', 4, hex(v4(denied.port, [127, 0, 0, 1], 0)), false],
      ['v4 short', 4, hex(v4(allowed.port).subarray(0, 15)), true],
      ['v4 socket, v6 address', 4, hex(v6(allowed.port, mapped)), true],
      ['v6 mapped allowed', 6, hex(v6(allowed.port, mapped)), true],
      ['v6 mapped denied', 6, hex(v6(denied.port, mapped)), false],
      ['v6 ::1 allowed', 6, hex(v6(allowed6.port, loopback6)), true],
      ['v6 ::1 denied port', 6, hex(v6(denied.port, loopback6)), false],
      ['v6 socket, v4 address', 6, hex(v4(denied.port)), false],
      ['v6 short', 6, hex(v6(allowed6.port, loopback6).subarray(0, 23)), true],
    ];
  }

  // sendto, sendmsg and connect on a fresh socket each.
  const SCRIPT = `${PRELUDE}
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_char_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_char_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.POINTER(iovec)),
                ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t),
                ('flags', ctypes.c_int)]
def call(kind, family, address):
    s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if kind == 'sendto':
            r = libc.sendto(s.fileno(), b'x', 1, 0, address, len(address))
        elif kind == 'sendmsg':
            vector = iovec(b'x', 1)
            header = msghdr(address, len(address), ctypes.pointer(vector), 1, None, 0, 0)
            r = libc.sendmsg(s.fileno(), ctypes.byref(header), 0)
        else:
            r = libc.connect(s.fileno(), address, len(address))
        return 'done' if r >= 0 else errno.errorcode[ctypes.get_errno()]
    finally:
        s.close()
for name, family, address in json.loads(sys.argv[1]):
    for kind in ['sendto', 'sendmsg', 'connect']:
        out[kind + ' ' + name] = call(kind, family, bytes.fromhex(address))
print(json.dumps(out))`;

  it('sends and connects as the kernel would where a rule allows, EACCES where none does', async () => {
    const list = cases();
    const policy = {
      fsRead: SYSTEM_READ,
      netAllow: [`udp://127.0.0.1:${allowed.port}`, `udp://[::1]:${allowed6.port}`],
    };
    const argv = [PYTHON, '-c', SCRIPT, JSON.stringify(list.map(([n, f, a]) => [n, f, a]))];
    const { supervised, alone } = (await bothWays(argv, policy)) as {
      supervised: Record<string, string>;
      alone: Record<string, string>;
    };
    const want: Record<string, string> = {};
    for (const [name, , , allowedByRules] of list) {
      for (const kind of ['sendto', 'sendmsg', 'connect']) {
        const key = `${kind} ${name}`;
        const kernel = alone[key]!;
        // A call the kernel refuses before any destination is the kernel's;
        // a connect to AF_UNSPEC is a disconnect.
        const disconnect = kind === 'connect' && name.includes('AF_UNSPEC');
        want[key] = allowedByRules || disconnect || kernel !== 'done' ? kernel : 'EACCES';
      }
    }
    expect(supervised).toEqual(want);
    expect(new Set(Object.values(alone))).toEqual(new Set(['done', 'EINVAL', 'EAFNOSUPPORT']));
  });
});

// A Unix message with descriptors is sent by the reaper (rights.ts), not by
// the caller: the same sends made alone must get the same answers, down to
// too_many_unix_fds() (net/unix/af_unix.c), which holds a sender's user to
// its soft RLIMIT_NOFILE of descriptors in flight.
describe('descriptors sent by the reaper, against a process sending alone', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sandlock-rights-diff-'));
    writeFileSync(join(dir, 'secret.txt'), 'from the sandbox');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const SCRIPT = `${PRELUDE}
import array, os
os.chdir(sys.argv[1])
if os.path.exists('dgram.sock'): os.unlink('dgram.sock')
fd = os.open('secret.txt', os.O_RDONLY)
def rights(fds):
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))]
def received(receiver, size=16):
    receiver.settimeout(10)
    message, ancillary, flags, _ = receiver.recvmsg(size, 8192)
    got = []
    for level, kind, data in ancillary:
        for number in array.array('i', data):
            got.append(os.pread(number, 100, 0).decode())
            os.close(number)
    return '%d %s %d' % (len(message), ','.join(got), flags)
server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
server.bind('dgram.sock')
client = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try_('pathname', lambda: client.sendmsg([b'p'], rights([fd]), 0, 'dgram.sock'))
try_('pathname got', lambda: received(server))
try_('pathname missing', lambda: client.sendmsg([b'p'], rights([fd]), 0, 'none.sock'))
try_('empty rights', lambda: client.sendmsg([b'e'], rights([]), 0, 'dgram.sock'))
try_('empty rights got', lambda: received(server))
abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
abstract.bind(b'\\0sandlock-rights-diff-%d' % os.getpid())
try_('abstract', lambda: client.sendmsg([b'a'], rights([fd, fd]), 0, abstract.getsockname()))
try_('abstract got', lambda: received(abstract))
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
try_('stream', lambda: a.sendmsg([b'sss'], rights([fd])))
try_('stream got', lambda: received(b))
try_('253 descriptors', lambda: a.sendmsg([b'x'], rights([fd] * 253)))
try_('253 got', lambda: 0 < len(received(b).split(',')) < 64)
try_('254 descriptors', lambda: a.sendmsg([b'x'], rights([fd] * 254)))
s1, s2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try_('large seqpacket', lambda: s1.sendmsg([b'y' * 300000], rights([fd])))
try_('bad descriptor', lambda: s1.sendmsg([b'z'], rights([1000])))
try_('no destination', lambda: client.sendmsg([b'n'], rights([fd])))
try_('shut down', lambda: (s2.close(), s1.sendmsg([b'z'], rights([fd])))[1])
t1, t2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
t1.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
try_('non-blocking full', lambda: [t1.setblocking(False), [t1.sendmsg([b'f' * 4096], rights([fd])) for _ in range(200)]][0])
# Descriptors in flight until the kernel refuses: fresh sockets sent into a
# pair that stays open (reachable, so unix_gc() never takes them back).
keep, held_in = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
keep.setblocking(False)
held, error = 0, None
try:
    for _ in range(4096):
        p, q = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            keep.sendmsg([b'i'], rights([p.fileno(), q.fileno()]))
            held += 2
        finally:
            p.close(); q.close()
except OSError as e:
    error = errno.errorcode.get(e.errno, e.errno)
out['in flight'] = [held <= 64 + 4, error]
print(json.dumps(out))`;

  it('answers as the kernel does, the descriptors in flight bounded by the same limit', async () => {
    const policy = {
      fsRead: [...SYSTEM_READ, dir],
      fsWrite: [dir],
      maxOpenFiles: 64,
    };
    const { supervised, alone } = await bothWays([PYTHON, '-c', SCRIPT, dir], policy);
    expect(supervised).toEqual(alone);
    // What the kernel said alone covers each outcome the comparison is about.
    expect(alone).toMatchObject({
      pathname: 1,
      'pathname got': '1 from the sandbox 0',
      'pathname missing': 'ENOENT',
      'abstract got': '1 from the sandbox,from the sandbox 0',
      'stream got': '3 from the sandbox 0',
      // The receiver's RLIMIT_NOFILE cuts the list short (MSG_CTRUNC).
      '253 got': true,
      '254 descriptors': 'EINVAL',
      'large seqpacket': 'EMSGSIZE',
      'bad descriptor': 'EBADF',
      'no destination': 'ENOTCONN',
      'shut down': 'EPIPE',
      'non-blocking full': 'EAGAIN',
      'in flight': [true, 'ETOOMANYREFS'],
    });
  });
});
