import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  type Arch,
  close,
  decodeSeccompNotif,
  encodeSeccompNotifResp,
  hostArch,
  ioctl,
  type LaunchStep,
  launch,
  POLLIN,
  resolveExecutable,
  SECCOMP_IOCTL_NOTIF_RECV,
  SECCOMP_IOCTL_NOTIF_SEND,
  SECCOMP_NOTIF_SIZE,
  type SeccompNotif,
  SysError,
  syscallNumber,
  trySyscall,
} from '@sandlock/sys';
import { type CompiledFilter, seccompFilterStep } from '../../src/index.js';

export const ENV = { PATH: '/usr/bin:/bin', LANG: 'C' };

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Install the filter with a listener and hand the fd to `supervise` while the child runs. */
  supervise?: (listenerFd: number, done: () => boolean) => Promise<void>;
  /** No filter at all: the control experiment. */
  unfiltered?: boolean;
}

/** Runs `argv` through the exec stub with `noNewPrivs` and `filter` installed. */
export async function runSandboxed(
  filter: CompiledFilter,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const path = resolveExecutable(argv[0]!, ENV.PATH);
  if (path === undefined) throw new Error(`${argv[0]} not found`);
  const steps: LaunchStep[] = options.unfiltered
    ? []
    : [
        { kind: 'noNewPrivs' },
        seccompFilterStep(filter, { listener: options.supervise !== undefined }),
      ];
  const launched = launch({ path, argv, env: ENV, steps, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  launched.child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  launched.child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let finished = false;
  const closed = new Promise<Pick<RunResult, 'code' | 'signal'>>((resolve) => {
    launched.child.on('close', (code, signal) => {
      finished = true;
      resolve({ code, signal });
    });
  });
  await launched.ready;
  const listenerFd = options.supervise ? launched.takeListener() : undefined;
  await launched.release();
  let supervision: Promise<void> | undefined;
  if (listenerFd !== undefined) {
    supervision = options.supervise!(listenerFd, () => finished).finally(() => close(listenerFd));
  }
  const status = await closed;
  await supervision;
  return { ...status, stdout, stderr };
}

/** The real interpreter behind `python3` (pyenv and friends put shell scripts on PATH). */
export function findPython(): string | undefined {
  try {
    return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return undefined;
  }
}

export const CALL_SYSCALLS = fileURLToPath(new URL('./call-syscalls.py', import.meta.url));

export type Call = readonly [name: string, ...args: (number | bigint)[]];

/** Runs raw syscalls in a filtered python3 and returns [result, errno] for each. */
export async function callSyscalls(
  python: string,
  filter: CompiledFilter,
  calls: readonly Call[],
  options: RunOptions = {},
  arch: Arch = hostArch(),
): Promise<[number, number][]> {
  const spec = calls.map(([name, ...args]) => [
    String(syscallNumber(name, arch)),
    ...args.map((a) => BigInt.asUintN(64, BigInt(a)).toString()),
  ]);
  const result = await runSandboxed(filter, [python, CALL_SYSCALLS, JSON.stringify(spec)], options);
  if (result.code !== 0) {
    throw new Error(`python3 exited with ${result.code ?? result.signal}: ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as [number, number][];
}

/** Whether the listener has a notification waiting, without blocking (ppoll with a zero timeout). */
function notificationPending(listenerFd: number): boolean {
  const pollfd = Buffer.alloc(8);
  pollfd.writeInt32LE(listenerFd, 0);
  pollfd.writeInt16LE(POLLIN, 4);
  const zero = Buffer.alloc(16);
  const ready = trySyscall('ppoll', pollfd, 1, zero, null, 8);
  return ready > 0 && (pollfd.readInt16LE(6) & POLLIN) !== 0;
}

/**
 * A minimal supervisor: answers every notification with `answer(notif)` (a negated errno, or 0
 * with a value) until the child is gone. RECV only runs when ppoll says a notification is
 * waiting, so the event loop is never blocked.
 */
export function answerNotifications(
  answer: (notif: SeccompNotif) => { error: number; val?: bigint },
  seen: SeccompNotif[] = [],
) {
  return async (listenerFd: number, done: () => boolean): Promise<void> => {
    while (!done()) {
      if (!notificationPending(listenerFd)) {
        await sleep(5);
        continue;
      }
      const buffer = Buffer.alloc(SECCOMP_NOTIF_SIZE); // the kernel wants it zeroed
      try {
        ioctl(listenerFd, SECCOMP_IOCTL_NOTIF_RECV, buffer);
      } catch (error) {
        if (error instanceof SysError && error.code === 'ENOENT') continue; // caller died
        throw error;
      }
      const notif = decodeSeccompNotif(buffer);
      seen.push(notif);
      const { error, val = 0n } = answer(notif);
      const response = encodeSeccompNotifResp({ id: notif.id, val, error, flags: 0 });
      try {
        ioctl(listenerFd, SECCOMP_IOCTL_NOTIF_SEND, response);
      } catch (sendError) {
        if (!(sendError instanceof SysError && sendError.code === 'ENOENT')) throw sendError;
      }
    }
  };
}
