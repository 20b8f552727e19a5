// /proc/net's socket tables inside a sandbox: its own sockets only.
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filterSocketTable, hostFileOf, PROC_HOST_MODULE, PROC_PIDS_MODULE } from '../src/index.js';
import { output, PYTHON, SYSTEM_READ } from './helpers.js';

/** The port the sandbox listens on (its Landlock rule allows only it). */
const OWN_PORT = 20000 + (process.pid % 20000);

const TCP = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0',
  '   1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 100 0 0 10 0',
  '   2: 0100007F:1F92 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 20 4 30 10 -1',
  '',
].join('\n');

describe('filterSocketTable', () => {
  it('keeps the header and the lines of the given inodes, byte-identical and in order', () => {
    const lines = TCP.split('\n');
    expect(filterSocketTable('tcp', TCP, new Set(['333', '111']))).toBe(
      `${lines[0]}\n${lines[1]}\n${lines[3]}\n`,
    );
    expect(filterSocketTable('tcp', TCP, new Set())).toBe(`${lines[0]}\n`);
    expect(filterSocketTable('tcp', '', new Set(['1']))).toBe('');
  });

  it('unix: the inode is the seventh column; a path with a newline goes on over the next line', () => {
    const text = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000000000000: 00000002 00000000 00010000 0001 01 500 /run/a',
      '0000000000000000: 00000002 00000000 00010000 0001 01 501 /tmp/odd',
      'name 500',
      '0000000000000000: 00000003 00000000 00000000 0001 03 502',
      '0000000000000000: 00000002 00000000 00010000 0001 01 503 /tmp/x',
      'y',
      '',
    ].join('\n');
    expect(filterSocketTable('unix', text, new Set(['500', '503']))).toBe(
      [
        'Num       RefCount Protocol Flags    Type St Inode Path',
        '0000000000000000: 00000002 00000000 00010000 0001 01 500 /run/a',
        '0000000000000000: 00000002 00000000 00010000 0001 01 503 /tmp/x',
        'y',
        '',
      ].join('\n'),
    );
  });

  it('packet and netlink: their own inode columns', () => {
    const packet = 'sk RefCnt Type Proto Iface R Rmem User Inode\nffff 3 3 0003 2 1 0 0 700\n';
    expect(filterSocketTable('packet', packet, new Set(['700']))).toBe(packet);
    expect(filterSocketTable('packet', packet, new Set(['0']))).toBe(
      'sk RefCnt Type Proto Iface R Rmem User Inode\n',
    );
    const netlink =
      'sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode\nffff 0 812 00000000 0 0 0 2 0 900\n';
    expect(filterSocketTable('netlink', netlink, new Set(['900']))).toBe(netlink);
    expect(filterSocketTable('netlink', netlink, new Set(['812']))).toBe(
      'sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode\n',
    );
  });

  it('hostFileOf names the socket tables of a pid or a thread', () => {
    expect(hostFileOf('/proc/12/net/tcp')).toEqual({
      kind: 'net',
      file: 'tcp',
      pid: 12,
      relative: 'net/tcp',
    });
    expect(hostFileOf('/proc/12/task/13/net/unix')).toEqual({
      kind: 'net',
      file: 'unix',
      pid: 12,
      relative: 'task/13/net/unix',
    });
    for (const other of ['/proc/12/net/dev', '/proc/12/net/tcpx', '/proc/net/tcp']) {
      expect(hostFileOf(other), other).toBeNull();
    }
  });
});

describe('/proc/net inside a sandbox that reads /proc', () => {
  let supervisor: Supervisor;
  let host: Server;
  let hostUnix: Server;
  let hostPort: number;
  const work = mkdtempSync(join(tmpdir(), 'sandlock-net-content-'));
  const unixPath = join(work, 'host.sock');
  beforeAll(async () => {
    supervisor = await Supervisor.start({
      modules: [{ module: PROC_PIDS_MODULE }, { module: PROC_HOST_MODULE }],
    });
    host = createServer().listen(0, '127.0.0.1');
    await once(host, 'listening');
    hostPort = (host.address() as { port: number }).port;
    hostUnix = createServer().listen(unixPath);
    await once(hostUnix, 'listening');
  });
  afterAll(() => {
    supervisor?.close();
    host?.close();
    hostUnix?.close();
    rmSync(work, { recursive: true, force: true });
  });
  const fsRead = [...SYSTEM_READ, '/proc', '/dev/null'];

  it('lists its own listener and socket pair, not a host listener on loopback nor a host Unix socket', async () => {
    const script = `
import os, socket
s = socket.socket()
s.bind(('127.0.0.1', ${OWN_PORT}))
s.listen()
a, b = socket.socketpair()
print(s.getsockname()[1])
print(os.fstat(s.fileno()).st_ino, os.fstat(a.fileno()).st_ino, os.fstat(b.fileno()).st_ino)
unix = []
for fd in os.listdir('/proc/self/fd'):
    try:
        link = os.readlink(f'/proc/self/fd/{fd}')
    except FileNotFoundError:
        continue  # the listing's own descriptor
    if link.startswith('socket:[') and int(fd) != s.fileno():
        unix.append(link[8:-1])
print(' '.join(unix))
pid = os.getpid()
for path in ('/proc/net/tcp', '/proc/self/net/tcp', f'/proc/{pid}/net/tcp', f'/proc/{pid}/task/{pid}/net/tcp', '/proc/net/unix'):
    print('==', path)
    print(open(path).read(), end='')
`;
    const out = await output(supervisor, [PYTHON, '-c', script], {
      policy: { fsRead, fsDeny: [] },
      fsRead,
      netBind: [OWN_PORT],
    });
    const [portLine, inodeLine, unixLine, ...rest] = out.split('\n');
    const own = Number(portLine);
    const [listener, left, right] = inodeLine!.split(' ');
    const sections = rest.join('\n').split(/^== /m).slice(1);
    expect(sections).toHaveLength(5);
    const hex = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
    for (const section of sections.slice(0, 4)) {
      const [path, header, ...lines] = section.trimEnd().split('\n');
      expect(header, path).toMatch(/^\s+sl\s+local_address rem_address\s+st /);
      expect(lines, path).toHaveLength(1);
      expect(lines[0], path).toContain(`0100007F${hex(own)}`);
      expect(lines[0]!.trim().split(/\s+/)[9], path).toBe(listener);
      expect(section, path).not.toContain(hex(hostPort));
    }
    const [, header, ...unix] = sections[4]!.trimEnd().split('\n');
    expect(header).toMatch(/^Num\s+RefCount Protocol Flags\s+Type St Inode Path/);
    // Its Unix sockets: the pair, and its stdout and stderr (Node's 'pipe' is a socket pair).
    const held = unixLine!.split(' ');
    expect(held).toEqual(expect.arrayContaining([left, right]));
    expect(unix.map((line) => line.trim().split(/\s+/)[6]).sort()).toEqual(held.sort());
    expect(sections[4]).not.toContain(unixPath);
    // The host's own view has both of the test's sockets: they were there to leave out.
    expect(readFileSync('/proc/net/tcp', 'utf8')).toContain(hex(hostPort));
    expect(readFileSync('/proc/net/unix', 'utf8')).toContain(unixPath);
  });
});
