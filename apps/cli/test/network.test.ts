// --net-allow and --net-deny through the CLI, against UDP servers on loopback.
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SYSTEM, sandlock } from './helpers.js';

const servers = [createSocket('udp4'), createSocket('udp4')];
const received: string[][] = [[], []];
const ports: number[] = [];

beforeAll(async () => {
  for (const [index, server] of servers.entries()) {
    server.on('message', (message) => received[index]!.push(message.toString()));
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
    ports.push((server.address() as AddressInfo).port);
  }
});
afterAll(() => {
  for (const server of servers) server.close();
});

/** Sends one datagram to each port given; prints each outcome. */
const SEND = [
  'import socket, sys',
  's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
  'for port in sys.argv[1:]:',
  '    try: print(s.sendto(b"hello", ("127.0.0.1", int(port))))',
  '    except OSError as e: print(e.strerror)',
].join('\n');

async function settled(count: () => number, expected: number): Promise<void> {
  const end = Date.now() + 10_000;
  while (count() < expected && Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

it('sends UDP only where --net-allow says, and refuses UDP without a rule', async () => {
  const [allowed, denied] = ports as [number, number];
  const run = (flags: string[]) =>
    sandlock(['run', ...SYSTEM, ...flags, '--', 'python3', '-c', SEND, `${allowed}`, `${denied}`]);
  const allowing = run(['--net-allow', `udp://127.0.0.1:${allowed}`]);
  expect(allowing.stderr).toBe('');
  expect(allowing.stdout).toBe('5\nPermission denied\n');
  const denying = run(['--net-deny', `127.0.0.1:${denied}`]);
  expect(denying.stdout).toBe('5\nPermission denied\n');
  const none = sandlock(['run', ...SYSTEM, '--', 'python3', '-c', SEND, `${allowed}`]);
  expect(none.status).not.toBe(0);
  expect(none.stderr).toMatch(/PermissionError/);
  await settled(() => received[0]!.length, 2);
  expect(received[0]).toEqual(['hello', 'hello']);
  expect(received[1]).toEqual([]);
});

it('takes netAllow or netDeny, not both; --no-udp is gone; --help says loopback is not special', () => {
  const both = sandlock(['run', '--net-allow', '10.0.0.1', '--net-deny', '10.0.0.2', '--', 'true']);
  expect(both.status).toBe(125);
  expect(both.stderr).toContain(
    '--net-deny: a policy has netAllow (what may be reached) or netDeny (what may not), not both',
  );
  const bad = sandlock(['run', '--net-allow', 'udp://[::1', '--', 'true']);
  expect(bad.stderr).toContain("--net-allow: '[' without ']', in 'udp://[::1'");
  expect(sandlock(['run', '--no-udp', '--', 'true']).status).not.toBe(0);
  expect(sandlock(['run', '--help']).stdout).toMatch(/loopback included only when a rule says so/);
});
