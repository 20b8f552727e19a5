// TCP connects under address rules: checked on a copy, made by the reaper in
// the policy's Landlock domain, answered later when they must wait.
import { close } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { AF_INET, SOCK_STREAM, trySyscall } from '@sandlock/sys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRELUDE, runPython } from './helpers.js';

/** A TCP server on loopback that counts the connections it accepts. */
interface TcpServer {
  readonly port: number;
  connections: number;
  close(): Promise<void>;
}

async function tcpServer(): Promise<TcpServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    result.connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const result: TcpServer = {
    port: (server.address() as { port: number }).port,
    connections: 0,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return result;
}

/** A port nothing listens on (bound, not listening: connects are refused). */
function closedPort(): { port: number; fd: number } {
  const fd = trySyscall('socket', AF_INET, SOCK_STREAM, 0);
  const address = Buffer.alloc(16);
  address.writeUInt16LE(AF_INET, 0);
  address.set([127, 0, 0, 1], 4);
  trySyscall('bind', fd, address, 16);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(16);
  trySyscall('getsockname', fd, address, length);
  return { port: address.readUInt16BE(2), fd };
}

/**
 * A listener whose accept queue is full (backlog 0, never accepted, one
 * connection waiting): a SYN to it is dropped (tcp_conn_request()), so a
 * connect waits through its retransmissions.
 */
async function fullListener(): Promise<{ port: number; close(): void }> {
  const fd = trySyscall('socket', AF_INET, SOCK_STREAM, 0);
  const address = Buffer.alloc(16);
  address.writeUInt16LE(AF_INET, 0);
  address.set([127, 0, 0, 1], 4);
  trySyscall('bind', fd, address, 16);
  trySyscall('listen', fd, 0);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(16);
  trySyscall('getsockname', fd, address, length);
  const port = address.readUInt16BE(2);
  const fillers: Socket[] = [];
  for (let i = 0; i < 1; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    fillers.push(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
  }
  return {
    port,
    close() {
      for (const socket of fillers) socket.destroy();
      close(fd, () => {});
    },
  };
}

let allowed: TcpServer;
let denied: TcpServer;

beforeAll(async () => {
  [allowed, denied] = await Promise.all([tcpServer(), tcpServer()]);
});
afterAll(async () => {
  await Promise.all([allowed.close(), denied.close()]);
});

const CONNECTS = `${PRELUDE}
ok, bad = int(sys.argv[1]), int(sys.argv[2])
def dial(family, host, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.connect((host, port))
    s.close()
try_('allowed', lambda: dial(socket.AF_INET, '127.0.0.1', ok))
try_('denied', lambda: dial(socket.AF_INET, '127.0.0.1', bad))
try_('mapped allowed', lambda: dial(socket.AF_INET6, '::ffff:127.0.0.1', ok))
try_('mapped denied', lambda: dial(socket.AF_INET6, '::ffff:127.0.0.1', bad))
print(json.dumps(out))`;

describe('TCP address rules', () => {
  it('connect only where a rule allows, v4-mapped addresses as IPv4', async () => {
    const ports = [String(allowed.port), String(denied.port)];
    const outcome = await runPython(
      CONNECTS,
      { allow: [`tcp://127.0.0.1:${allowed.port}`] },
      ports,
    );
    expect(outcome).toEqual({
      allowed: null,
      denied: 'EACCES',
      'mapped allowed': null,
      'mapped denied': 'EACCES',
    });
    const denyList = await runPython(CONNECTS, { deny: [`127.0.0.0/8:${denied.port}`] }, ports);
    expect(denyList).toEqual(outcome);
    expect(denied.connections).toBe(0);
    expect(allowed.connections).toBe(4);
  });

  it('a Landlock netConnect port rule still applies to a connect the rules allow (§7.17)', async () => {
    const { Sandbox, SYSTEM_READ, PYTHON } = await import('./helpers.js');
    const result = await Sandbox.builder()
      .fsRead(...SYSTEM_READ)
      .netConnect(allowed.port)
      .netAllow('tcp://127.0.0.1')
      .build()
      .run([PYTHON, '-c', CONNECTS, String(allowed.port), String(denied.port)], {
        encoding: 'utf8',
        timeout: 60_000,
      });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({
      allowed: null,
      denied: 'EACCES',
      'mapped allowed': null,
      'mapped denied': 'EACCES',
    });
    expect(denied.connections).toBe(0);
  });

  it('non-blocking: EINPROGRESS, then completes; EALREADY, EISCONN as the kernel says', async () => {
    const full = await fullListener();
    try {
      const script = `${PRELUDE}
import select
ok, full = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(); s.setblocking(False)
out['connect'] = errno.errorcode.get(s.connect_ex(('127.0.0.1', ok)), 0)
select.select([], [s], [], 30)
out['so_error'] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
out['again'] = errno.errorcode.get(s.connect_ex(('127.0.0.1', ok)), 0)
out['and again'] = errno.errorcode.get(s.connect_ex(('127.0.0.1', ok)), 0)
w = socket.socket(); w.setblocking(False)
out['waiting'] = errno.errorcode.get(w.connect_ex(('127.0.0.1', full)), 0)
out['waiting again'] = errno.errorcode.get(w.connect_ex(('127.0.0.1', full)), 0)
out['writable'] = len(select.select([], [w], [], 0.2)[1])
print(json.dumps(out))`;
      const before = allowed.connections;
      const outcome = await runPython(script, { allow: ['tcp://127.0.0.1'] }, [
        String(allowed.port),
        String(full.port),
      ]);
      expect(outcome).toEqual({
        connect: 'EINPROGRESS',
        so_error: 0,
        // __inet_stream_connect(): the first connect after the handshake
        // marks the socket connected (0), the next finds it so.
        again: 0,
        'and again': 'EISCONN',
        waiting: 'EINPROGRESS',
        'waiting again': 'EALREADY',
        writable: 0,
      });
      expect(allowed.connections).toBe(before + 1);
    } finally {
      full.close();
    }
  });

  it('a blocking connect that waits stalls no other process of the sandbox, and a signal interrupts it', async () => {
    const full = await fullListener();
    try {
      const script = `${PRELUDE}
import os, signal, time
ok, full = int(sys.argv[1]), int(sys.argv[2])
r, w = os.pipe()
child = os.fork()
if child == 0:
    signal.signal(signal.SIGUSR1, lambda *args: None)
    libc = ctypes.CDLL('libc.so.6', use_errno=True)
    s = socket.socket()
    address = struct.pack('<HH4s8x', socket.AF_INET, socket.htons(full), socket.inet_aton('127.0.0.1'))
    os.write(w, b'1')
    result = libc.connect(s.fileno(), address, 16)
    os._exit(100 + ctypes.get_errno() if result < 0 else 1)
os.read(r, 1)
time.sleep(0.3)
done = 0
for i in range(20):
    c = socket.socket(); c.connect(('127.0.0.1', ok)); c.close(); done += 1
out['done'] = done
out['still waiting'] = os.waitpid(child, os.WNOHANG)[0] == 0
os.kill(child, signal.SIGUSR1)
status = os.waitpid(child, 0)[1]
out['child'] = errno.errorcode.get(os.WEXITSTATUS(status) - 100, os.WEXITSTATUS(status))
print(json.dumps(out))`;
      const outcome = await runPython(script, { allow: ['tcp://127.0.0.1'] }, [
        String(allowed.port),
        String(full.port),
      ]);
      expect(outcome).toEqual({ done: 20, 'still waiting': true, child: 'EINTR' });
    } finally {
      full.close();
    }
  });

  it('MSG_FASTOPEN (a connect by sendto) is refused', async () => {
    const script = `${PRELUDE}
bad = int(sys.argv[1])
s = socket.socket()
try_('fastopen', lambda: s.sendto(b'x', 0x20000000, ('127.0.0.1', bad)))
print(json.dumps(out))`;
    const outcome = await runPython(script, { allow: ['tcp://127.0.0.1'] }, [String(denied.port)]);
    // 95, EOPNOTSUPP, which Python names ENOTSUP.
    expect(outcome).toEqual({ fastopen: 'ENOTSUP' });
    expect(denied.connections).toBe(0);
  });

  it('agrees with the same Landlock domain alone wherever the rules allow (differential)', async () => {
    const { differential } = await import('./differential.js');
    const closed = closedPort();
    try {
      const ports = [allowed.port, denied.port, closed.port];
      const { supervised, alone } = await differential(ports, [allowed.port, closed.port]);
      expect(supervised).toEqual(alone);
      expect(supervised).toEqual([null, 'EACCES', 'ECONNREFUSED']);
    } finally {
      close(closed.fd, () => {});
    }
  });
});
