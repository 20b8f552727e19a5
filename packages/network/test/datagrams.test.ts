import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRELUDE, runPython, type UdpServer, udpServer, until } from './helpers.js';

let allowed: UdpServer;
let denied: UdpServer;
let allowed6: UdpServer;

beforeAll(async () => {
  [allowed, denied, allowed6] = await Promise.all([udpServer(), udpServer(), udpServer('udp6')]);
});
afterAll(async () => {
  await Promise.all([allowed.close(), denied.close(), allowed6.close()]);
});

function texts(server: UdpServer): string[] {
  return server.received.map((message) => message.toString());
}

describe('UDP sockets', () => {
  it('cannot be made without a UDP rule', async () => {
    const script = `${PRELUDE}
try_('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).fileno() >= 0)
try_('udp6', lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).fileno() >= 0)
try_('tcp', lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).fileno() >= 0)
print(json.dumps(out))`;
    expect(await runPython(script)).toEqual({ udp: 'EACCES', udp6: 'EACCES', tcp: true });
    expect(await runPython(script, { allow: ['tcp://127.0.0.1:80'] })).toEqual({
      udp: 'EACCES',
      udp6: 'EACCES',
      tcp: true,
    });
    expect(await runPython(script, { allow: ['udp://127.0.0.1:53'] })).toEqual({
      udp: true,
      udp6: true,
      tcp: true,
    });
  });

  it('send only to what a rule allows: sendto, sendmsg, v4-mapped, deny lists', async () => {
    const script = `${PRELUDE}
ok, bad, ok6 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try_('sendto allowed', lambda: s.sendto(b'sendto', ('127.0.0.1', ok)))
try_('sendto denied', lambda: s.sendto(b'sendto', ('127.0.0.1', bad)))
try_('sendmsg allowed', lambda: s.sendmsg([b'send', b'msg'], [], 0, ('127.0.0.1', ok)))
try_('sendmsg denied', lambda: s.sendmsg([b'sendmsg'], [], 0, ('127.0.0.1', bad)))
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
try_('mapped allowed', lambda: s6.sendto(b'mapped', ('::ffff:127.0.0.1', ok)))
try_('mapped denied', lambda: s6.sendto(b'mapped', ('::ffff:127.0.0.1', bad)))
try_('v6 allowed', lambda: s6.sendto(b'v6', ('::1', ok6)))
print(json.dumps(out))`;
    const ports = [allowed.port, denied.port, allowed6.port].map(String);
    const allowRules = [`udp://127.0.0.1:${allowed.port}`, `udp://[::1]:${allowed6.port}`];
    expect(await runPython(script, { allow: allowRules }, ports)).toEqual({
      'sendto allowed': 6,
      'sendto denied': 'EACCES',
      'sendmsg allowed': 7,
      'sendmsg denied': 'EACCES',
      'mapped allowed': 6,
      'mapped denied': 'EACCES',
      'v6 allowed': 2,
    });
    await until(() => allowed.received.length === 3 && allowed6.received.length === 1);
    expect(texts(allowed).sort()).toEqual(['mapped', 'sendmsg', 'sendto']);
    // A deny list: everything but the denied server (an IPv4 CIDR, matched
    // through a mapped address too).
    const denyRules = [`127.0.0.0/8:${denied.port}`];
    const outcome = (await runPython(script, { deny: denyRules }, ports)) as Record<
      string,
      unknown
    >;
    expect(outcome['sendto denied']).toBe('EACCES');
    expect(outcome['mapped denied']).toBe('EACCES');
    expect(outcome['sendto allowed']).toBe(6);
    expect(denied.received).toEqual([]);
  });

  it('sendmmsg: each message checked; a denied one ends the call', async () => {
    const script = `${PRELUDE}
ok, bad = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL('libc.so.6', use_errno=True)
class iovec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
class msghdr(ctypes.Structure):
    _fields_ = [('name', ctypes.c_void_p), ('namelen', ctypes.c_uint32), ('iov', ctypes.c_void_p),
                ('iovlen', ctypes.c_size_t), ('control', ctypes.c_void_p), ('controllen', ctypes.c_size_t),
                ('flags', ctypes.c_int)]
class mmsghdr(ctypes.Structure):
    _fields_ = [('hdr', msghdr), ('len', ctypes.c_uint32)]
keep = []
def message(port, text):
    addr = ctypes.create_string_buffer(struct.pack('<HH4s8x', socket.AF_INET, socket.htons(port), socket.inet_aton('127.0.0.1')), 16)
    data = ctypes.create_string_buffer(text, len(text))
    iov = iovec(ctypes.cast(data, ctypes.c_void_p), len(text))
    keep.extend([addr, data, iov])
    return mmsghdr(msghdr(ctypes.cast(addr, ctypes.c_void_p), 16, ctypes.cast(ctypes.pointer(iov), ctypes.c_void_p), 1, None, 0, 0), 0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def send(messages):
    vector = (mmsghdr * len(messages))(*messages)
    result = libc.sendmmsg(s.fileno(), vector, len(messages), 0)
    if result < 0:
        raise OSError(ctypes.get_errno(), 'sendmmsg')
    return '%d:%s' % (result, ','.join(str(vector[i].len) for i in range(len(messages))))
try_('allowed then denied', lambda: send([message(ok, b'one'), message(bad, b'two'), message(ok, b'three')]))
try_('denied first', lambda: send([message(bad, b'four'), message(ok, b'five')]))
print(json.dumps(out))`;
    const before = allowed.received.length;
    const outcome = await runPython(script, { allow: [`udp://127.0.0.1:${allowed.port}`] }, [
      String(allowed.port),
      String(denied.port),
    ]);
    expect(outcome).toEqual({ 'allowed then denied': '1:3,0,0', 'denied first': 'EACCES' });
    await until(() => allowed.received.length === before + 1);
    expect(texts(allowed).at(-1)).toBe('one');
    expect(denied.received).toEqual([]);
  });

  it('connect: to an allowed peer only, and then send goes only there', async () => {
    const script = `${PRELUDE}
ok, bad = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try_('connect denied', lambda: s.connect(('127.0.0.1', bad)))
try_('connect allowed', lambda: s.connect(('127.0.0.1', ok)))
try_('send', lambda: s.send(b'connected'))
try_('sendto other', lambda: s.sendto(b'other', ('127.0.0.1', bad)))
# AF_UNSPEC (all zeros): dissolves the association.
try_('disconnect', lambda: ctypes.CDLL('libc.so.6').connect(s.fileno(), ctypes.create_string_buffer(16), 16))
print(json.dumps(out))`;
    const before = allowed.received.length;
    const outcome = await runPython(script, { allow: [`udp://127.0.0.1:${allowed.port}`] }, [
      String(allowed.port),
      String(denied.port),
    ]);
    expect(outcome).toEqual({
      'connect denied': 'EACCES',
      'connect allowed': null,
      send: 9,
      'sendto other': 'EACCES',
      disconnect: 0,
    });
    await until(() => allowed.received.length === before + 1);
    expect(texts(allowed).at(-1)).toBe('connected');
    expect(denied.received).toEqual([]);
  });

  it('a host name: resolved at start, pinned in /etc/hosts, matched by address', async () => {
    const script = `${PRELUDE}
ok, bad = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try_('by name', lambda: s.sendto(b'by name', ('localhost', ok)))
try_('other port', lambda: s.sendto(b'other', ('localhost', bad)))
out['hosts'] = [line for line in open('/etc/hosts').read().splitlines() if line.endswith('\\tlocalhost')]
print(json.dumps(out))`;
    const before = allowed.received.length;
    const outcome = (await runPython(script, { allow: [`udp://localhost:${allowed.port}`] }, [
      String(allowed.port),
      String(denied.port),
    ])) as Record<string, unknown>;
    expect(outcome['by name']).toBe(7);
    expect(outcome['other port']).toBe('EACCES');
    // The pinned lines close the file: localhost's addresses as this process resolved them.
    expect(outcome.hosts).toContain('127.0.0.1\tlocalhost');
    await until(() => allowed.received.length === before + 1);
    expect(denied.received).toEqual([]);
  });
});
