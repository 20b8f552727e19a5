import { createSocket, type Socket } from 'node:dgram';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
// Imported by path, not by package name: `sandlock` depends on this package,
// and a dependency back would be a cycle.
import { Sandbox } from '../../sandlock/src/index.js';

export { Sandbox };

export const PYTHON = '/usr/bin/python3';

/** The system directories a dynamically linked program needs, where they exist. */
export const SYSTEM_READ = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) =>
  existsSync(path),
);

/** A UDP server on loopback that counts what it receives. */
export interface UdpServer {
  readonly port: number;
  readonly received: Buffer[];
  close(): Promise<void>;
}

export async function udpServer(type: 'udp4' | 'udp6' = 'udp4'): Promise<UdpServer> {
  const socket: Socket = createSocket(type);
  const received: Buffer[] = [];
  socket.on('message', (message) => received.push(message));
  await new Promise<void>((resolve) =>
    socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', resolve),
  );
  return {
    port: (socket.address() as AddressInfo).port,
    received,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/** Waits until `condition` holds; the deadline only catches hangs. */
export async function until(condition: () => boolean, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Runs a Python script in a sandbox with these network rules; its stdout
 * parsed as JSON.
 */
export async function runPython(
  script: string,
  rules: { allow?: string[]; deny?: string[] } = {},
  args: string[] = [],
): Promise<unknown> {
  let builder = Sandbox.builder().fsRead(...SYSTEM_READ);
  if (rules.allow) builder = builder.netAllow(...rules.allow);
  if (rules.deny) builder = builder.netDeny(...rules.deny);
  const result = await builder
    .build()
    .run([PYTHON, '-c', script, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (result.exitCode !== 0) {
    throw new Error(`python exited ${result.exitCode}: ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

/**
 * Python that tries calls and reports each outcome: `try_(name, fn)` records
 * fn()'s value or the errno it raised, and the script prints them as JSON.
 */
export const PRELUDE = `
import ctypes, errno, json, socket, struct, sys
out = {}
def try_(name, fn):
    try:
        value = fn()
        out[name] = value if isinstance(value, (int, str, type(None))) else str(value)
    except OSError as error:
        out[name] = errno.errorcode.get(error.errno, error.errno)
`;
