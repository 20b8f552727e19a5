// Network rules against servers on addresses that are not loopback, in
// network namespaces the test makes (network-lab.ts), with host names
// resolved by the lab's own DNS server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAB, Lab, type LabEvent, labUnavailable } from './network-lab.js';

const unavailable = labUnavailable();
if (unavailable !== null) console.warn(`network lab tests skipped: ${unavailable}`);

/** Sends "probe" to each host:port given (UDP; a name as IPv4); prints one outcome per line. */
const SEND_UDP = [
  'import socket, sys',
  'for target in sys.argv[1:]:',
  '    host, port = target.rsplit(":", 1)',
  '    host = host.strip("[]")',
  '    try:',
  '        family = socket.AF_INET6 if ":" in host else socket.AF_INET',
  '        address = socket.getaddrinfo(host, int(port), family, socket.SOCK_DGRAM)[0][4]',
  '        s = socket.socket(family, socket.SOCK_DGRAM)',
  '        print(s.sendto(b"probe", address))',
  '    except OSError as e:',
  '        print(type(e).__name__, e.errno)',
].join('\n');

/** Connects to each host:port given (TCP; names as IPv4); prints what the server said, or the error. */
const CONNECT_TCP = [
  'import socket, sys',
  'for target in sys.argv[1:]:',
  '    host, port = target.rsplit(":", 1)',
  '    host = host.strip("[]")',
  '    try:',
  '        family = socket.AF_INET6 if ":" in host else socket.AF_INET',
  '        address = socket.getaddrinfo(host, int(port), family, socket.SOCK_STREAM)[0][4]',
  '        s = socket.socket(family, socket.SOCK_STREAM)',
  '        s.connect(address)',
  '        print(s.makefile().readline().strip())',
  '    except OSError as e:',
  '        print(type(e).__name__, e.errno)',
].join('\n');

const RUN = ['run', '--system', '--'];

const NAMES = {
  'allowed.test': [LAB.allowed, LAB.allowed6],
  'denied.test': [LAB.denied, LAB.denied6],
};

async function until(condition: () => boolean): Promise<void> {
  const end = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function udpFrom(events: LabEvent[]): string[] {
  return events.flatMap((event) => ('udp' in event && event.data === 'probe' ? [event.udp] : []));
}

describe.skipIf(unavailable !== null)('network rules in a lab of two namespaces', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await Lab.create(NAMES);
  }, 60_000);
  afterAll(() => lab?.close());

  /** Runs `script` on these targets with these flags in the client namespace; its lines (the CLI itself says nothing). */
  function probe(flags: string[], script: string, targets: string[]): string[] {
    const result = lab.sandlock([
      'run',
      '--system',
      ...flags,
      '--',
      'python3',
      '-c',
      script,
      ...targets,
    ]);
    expect(result.stderr).toBe('');
    return result.stdout.trim().split('\n');
  }

  it('pins a host name resolved by the lab DNS at start and shows it in /etc/hosts', async () => {
    const from = lab.events.length;
    const result = lab.sandlock([
      'run',
      '--system',
      '--net-allow',
      'udp://allowed.test:5353',
      '--',
      'sh',
      '-c',
      `grep allowed.test /etc/hosts; python3 -c '${SEND_UDP}' allowed.test:5353 ${LAB.denied}:5353 [${LAB.allowed6}]:5353 [${LAB.denied6}]:5353`,
    ]);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    expect(lines.filter((line) => line.includes('allowed.test')).sort()).toEqual(
      [`${LAB.allowed}\tallowed.test`, `${LAB.allowed6}\tallowed.test`].sort(),
    );
    expect(lines.slice(-4)).toEqual(['5', 'PermissionError 13', '5', 'PermissionError 13']);
    const events = await lab.settled(from);
    // The supervisor asked the lab's DNS (outside the sandbox); the sandbox
    // itself never did: it read the name from its /etc/hosts.
    expect(events.some((event) => 'dns' in event && event.dns === 'allowed.test')).toBe(true);
    expect(udpFrom(events).sort()).toEqual([LAB.allowed, LAB.allowed6].sort());
  });

  it('keeps the addresses pinned at start when DNS changes during the run', async () => {
    const from = lab.events.length;
    const flag = mkdtempSync(join(tmpdir(), 'sandlock-lab-'));
    try {
      // The sandbox starts, says so, and waits for the flag; meanwhile DNS
      // moves allowed.test to the denied address.
      const script = [
        'import os, sys, time',
        'print("started", flush=True)',
        'while not os.path.exists(sys.argv[1] + "/go"): time.sleep(0.02)',
        `os.execvp("python3", ["python3", "-c", ${JSON.stringify(SEND_UDP)}, "allowed.test:5353", "${LAB.denied}:5353"])`,
      ].join('\n');
      const child = lab.spawn([
        'run',
        '--system',
        '-r',
        flag,
        '--net-allow',
        'udp://allowed.test:5353',
        '--',
        'python3',
        '-c',
        script,
        flag,
      ]);
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      const ended = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await until(() => output.startsWith('started\n'));
      await lab.setNames({ 'allowed.test': [LAB.denied] });
      writeFileSync(join(flag, 'go'), '');
      expect(await ended).toBe(0);
      expect(output).toBe('started\n5\nPermissionError 13\n');
    } finally {
      await lab.setNames(NAMES);
      rmSync(flag, { recursive: true, force: true });
    }
    expect(udpFrom(await lab.settled(from))).toEqual([LAB.allowed]);
  });

  it('matches CIDR rules, deny lists and v4-mapped addresses', async () => {
    const from = lab.events.length;
    expect(
      probe(
        ['--net-allow', 'udp://10.77.0.0/31:5353', '--net-allow', 'udp://[fd77::/127]:5353'],
        SEND_UDP,
        [
          `${LAB.allowed}:5353`,
          `${LAB.denied}:5353`,
          `[::ffff:${LAB.denied}]:5353`,
          `[${LAB.allowed6}]:5353`,
          `[${LAB.denied6}]:5353`,
        ],
      ),
    ).toEqual(['5', 'PermissionError 13', 'PermissionError 13', '5', 'PermissionError 13']);
    expect(
      probe(['--net-deny', 'denied.test'], SEND_UDP, [
        `${LAB.allowed}:5353`,
        `${LAB.denied}:5353`,
        `[::ffff:${LAB.denied}]:5353`,
        `[${LAB.denied6}]:5353`,
      ]),
    ).toEqual(['5', 'PermissionError 13', 'PermissionError 13', 'PermissionError 13']);
    expect(udpFrom(await lab.settled(from)).sort()).toEqual(
      [LAB.allowed, LAB.allowed6, LAB.allowed].sort(),
    );
  });

  it('lets no datagram out without a rule, not even a DNS query', async () => {
    const from = lab.events.length;
    const result = lab.sandlock([
      ...RUN,
      'python3',
      '-c',
      SEND_UDP,
      `${LAB.allowed}:5353`,
      `${LAB.allowed}:53`,
    ]);
    expect(result.stdout).toBe('PermissionError 13\nPermissionError 13\n');
    const events = await lab.settled(from);
    expect(events.filter((event) => 'udp' in event || 'dns' in event)).toEqual([]);
  });

  it('connects TCP only where an address rule allows, by name, CIDR or deny list', async () => {
    const from = lab.events.length;
    expect(
      probe(['--net-allow', 'allowed.test:8080'], CONNECT_TCP, [
        'allowed.test:8080',
        `${LAB.denied}:8080`,
        `${LAB.allowed}:5353`,
        `[::ffff:${LAB.denied}]:8080`,
        `[${LAB.allowed6}]:8080`,
      ]),
    ).toEqual([
      `hello from ${LAB.allowed}:8080`,
      'PermissionError 13',
      'PermissionError 13',
      'PermissionError 13',
      `hello from ${LAB.allowed6}:8080`,
    ]);
    expect(
      probe(['--net-deny', 'tcp://10.77.0.2/31'], CONNECT_TCP, [
        `${LAB.allowed}:5353`,
        `${LAB.denied}:5353`,
        `[::ffff:${LAB.denied}]:5353`,
      ]),
    ).toEqual([`hello from ${LAB.allowed}:5353`, 'PermissionError 13', 'PermissionError 13']);
    const events = await lab.settled(from);
    const reached = events.flatMap((event) =>
      'tcp' in event ? [`${event.tcp}:${event.port}`] : [],
    );
    expect(reached.sort()).toEqual(
      [`${LAB.allowed}:8080`, `${LAB.allowed6}:8080`, `${LAB.allowed}:5353`].sort(),
    );
  });

  it('holds an address-rule connect to the Landlock port rules too', () => {
    expect(
      probe(['--net-allow', `${LAB.allowed}`, '--net-connect', '5353'], CONNECT_TCP, [
        `${LAB.allowed}:5353`,
        `${LAB.allowed}:8080`,
      ]),
    ).toEqual([`hello from ${LAB.allowed}:5353`, 'PermissionError 13']);
  });

  it('refuses to start when a host name of the rules does not resolve', () => {
    const result = lab.sandlock([
      'run',
      '--system',
      '--net-allow',
      'nowhere.test:80',
      '--',
      'true',
    ]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/nowhere\.test/);
  });
});
