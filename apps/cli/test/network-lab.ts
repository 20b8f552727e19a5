// A network lab for tests: two network namespaces joined by a veth pair.
// The client namespace runs `sandlock` (through `ip netns exec`, which also
// bind-mounts /etc/netns/<name>/resolv.conf over /etc/resolv.conf, so host
// names of rules are resolved by the lab's DNS server); the server namespace
// holds fixtures/lab-server.mjs on two IPv4 and two IPv6 addresses. No
// address outside the lab is ever used.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CLI, type CliResult } from './helpers.js';

const SERVER = fileURLToPath(new URL('./fixtures/lab-server.mjs', import.meta.url));

/** The server side's addresses: the first of each family is "allowed" in tests, the second "denied". */
export const LAB = {
  allowed: '10.77.0.1',
  denied: '10.77.0.3',
  allowed6: 'fd77::1',
  denied6: 'fd77::3',
  client: '10.77.0.2',
  client6: 'fd77::2',
} as const;

export type LabEvent =
  | { dns: string | null; type: string | null }
  | { udp: string; from: string; data: string }
  | { tcp: string; port: number; from: string }
  | { names: string[] }
  | { ready: true };

function ip(...args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`ip ${args.join(' ')}: ${result.stderr || result.error?.message}`);
  }
}

/** Why a lab cannot be made here, or null when it can. */
export function labUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  const probe = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return "iproute2's `ip` is not installed";
  return null;
}

export class Lab {
  readonly events: LabEvent[] = [];
  private constructor(
    readonly client: string,
    readonly server: string,
    private readonly process: ChildProcess,
  ) {}

  /** Makes the namespaces and starts the servers; `names` is the DNS table. */
  static async create(names: Record<string, string[]>): Promise<Lab> {
    const id = `${process.pid}${Math.floor(Math.random() * 1000)}`;
    const client = `slc${id}`;
    const server = `sls${id}`;
    ip('netns', 'add', client);
    try {
      ip('netns', 'add', server);
      ip(
        'link',
        'add',
        client,
        'netns',
        client,
        'type',
        'veth',
        'peer',
        'name',
        server,
        'netns',
        server,
      );
      for (const [ns, device, addresses] of [
        [client, client, [`${LAB.client}/24`]],
        [server, server, [`${LAB.allowed}/24`, `${LAB.denied}/24`]],
      ] as const) {
        for (const address of addresses) ip('-n', ns, 'addr', 'add', address, 'dev', device);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('-n', ns, 'link', 'set', device, 'up');
      }
      // nodad: the addresses are usable at once instead of after duplicate
      // address detection (they would be "tentative" and refuse to bind).
      ip('-n', client, '-6', 'addr', 'add', `${LAB.client6}/64`, 'dev', client, 'nodad');
      for (const address of [LAB.allowed6, LAB.denied6]) {
        ip('-n', server, '-6', 'addr', 'add', `${address}/64`, 'dev', server, 'nodad');
      }
      mkdirSync(`/etc/netns/${client}`, { recursive: true });
      writeFileSync(
        `/etc/netns/${client}/resolv.conf`,
        `nameserver ${LAB.allowed}\noptions attempts:1 timeout:2\n`,
      );
    } catch (error) {
      Lab.remove(client, server);
      throw error;
    }
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        server,
        process.execPath,
        SERVER,
        JSON.stringify({ addresses: [LAB.allowed, LAB.denied, LAB.allowed6, LAB.denied6], names }),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lab = new Lab(client, server, child);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lab.events.push(JSON.parse(line) as LabEvent);
    });
    try {
      await lab.until((event) => 'ready' in event);
    } catch (error) {
      lab.close();
      throw error;
    }
    return lab;
  }

  /** Runs the sandlock CLI in the client namespace. */
  sandlock(args: readonly string[]): CliResult {
    const result = spawnSync('ip', ['netns', 'exec', this.client, process.execPath, CLI, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  /** Starts the sandlock CLI in the client namespace. */
  spawn(args: readonly string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.client, process.execPath, CLI, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  }

  /** Replaces the DNS server's table. */
  setNames(names: Record<string, string[]>): Promise<LabEvent> {
    const seen = this.events.length;
    this.process.stdin!.write(`${JSON.stringify({ names })}\n`);
    return this.until((event) => 'names' in event, seen);
  }

  /** The first event from index `from` on that satisfies `match`; the deadline only catches hangs. */
  async until(match: (event: LabEvent) => boolean, from = 0): Promise<LabEvent> {
    const end = Date.now() + 20_000;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      if (this.process.exitCode !== null) throw new Error('the lab server exited');
      if (Date.now() > end) throw new Error('timed out waiting for the lab server');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * The events after `from` once everything sent before has arrived: a
   * marker datagram, sent from outside any sandbox to each of the four
   * sinks after the sandbox has ended, is read after what was queued on
   * that sink before it.
   */
  async settled(from: number): Promise<LabEvent[]> {
    const marker = `marker-${Math.random()}`;
    const sinks = [LAB.allowed, LAB.denied, LAB.allowed6, LAB.denied6];
    const script = [
      'import socket, sys',
      'for ip in sys.argv[2:]:',
      '    family = socket.AF_INET6 if ":" in ip else socket.AF_INET',
      '    socket.socket(family, socket.SOCK_DGRAM).sendto(sys.argv[1].encode(), (ip, 5353))',
    ].join('\n');
    const sent = spawnSync(
      'ip',
      ['netns', 'exec', this.client, 'python3', '-c', script, marker, ...sinks],
      { encoding: 'utf8' },
    );
    if (sent.status !== 0) throw new Error(`marker: ${sent.stderr}`);
    for (const sink of sinks) {
      await this.until(
        (event) => 'udp' in event && event.udp === sink && event.data === marker,
        from,
      );
    }
    return this.events.slice(from).filter((event) => !('udp' in event && event.data === marker));
  }

  close(): void {
    this.process.kill('SIGKILL');
    Lab.remove(this.client, this.server);
  }

  private static remove(client: string, server: string): void {
    for (const ns of [client, server]) spawnSync('ip', ['netns', 'del', ns]);
    rmSync(`/etc/netns/${client}`, { recursive: true, force: true });
  }
}
