import { readFileSync } from 'node:fs';
import { close } from '@sandlock/sys';
import { openConsole } from './console.js';
import { callSupervisor } from './control.js';
import { notRunning, OciError } from './errors.js';
import type { RuntimeLog } from './log.js';
import type { OciProcess } from './spec.js';
import { ContainerDir } from './state.js';
import { detachStdio, endLike, reportReady } from './supervise.js';

export interface ExecClientOptions {
  root: string;
  id: string;
  /** The process.json `exec` was given. */
  process: string;
  consoleSocket: string | null;
  log: RuntimeLog;
}

/** Signals the shim may send the process it waits for, passed on to the exec'd one. */
const FORWARDED = [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
] as const;

/**
 * The process `exec` leaves behind (named by its pid file; the shim waits
 * for it): asks the container's supervisor to start the process inside the
 * container, with this process's stdio (or a new terminal, sent to the
 * console socket), passes signals on, and ends as that process ended. A
 * supervisor gone or refusing fails the exec: nothing is started elsewhere.
 */
export async function execClient(options: ExecClientOptions): Promise<never> {
  const dir = new ContainerDir(options.root, options.id);
  let pid: number;
  try {
    const wanted = JSON.parse(readFileSync(options.process, 'utf8')) as OciProcess;
    let stdio: [number, number, number] = [0, 1, 2];
    let slave = -1;
    if (wanted.terminal === true) {
      if (options.consoleSocket === null) {
        throw new OciError('process.json: terminal: true, but no --console-socket was given');
      }
      const size = wanted.consoleSize
        ? { rows: wanted.consoleSize.height, columns: wanted.consoleSize.width }
        : null;
      let pty: ReturnType<typeof openConsole>;
      try {
        pty = openConsole(options.consoleSocket, size);
      } catch (error) {
        throw new OciError(
          `cannot send the terminal to the console socket ${options.consoleSocket}: ${(error as Error).message}`,
        );
      }
      close(pty.master);
      slave = pty.slave;
      stdio = [slave, slave, slave];
    } else if (options.consoleSocket !== null) {
      throw new OciError('--console-socket given, but process.terminal is not true');
    }
    const reply = await callSupervisor(dir.socket, {
      op: 'exec',
      process: wanted,
      fds: stdio,
    }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') throw notRunning(options.id);
      throw error;
    });
    if (!reply.ok) throw new OciError(reply.error);
    pid = reply.pid!;
    if (slave >= 0) close(slave);
    // Only the process holds its stdio now, as under runc: its end is their end.
    detachStdio();
  } catch (error) {
    reportReady(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
  reportReady('ok');
  for (const signal of FORWARDED) {
    process.on(signal, () => {
      void callSupervisor(dir.socket, { op: 'signal', pid, signal }).catch(() => {});
    });
  }
  const ended = await callSupervisor(dir.socket, { op: 'wait', pid }, null).catch(
    (error: Error) => ({ ok: false as const, error: error.message }),
  );
  if (!ended.ok) {
    options.log.error(`exec: process ${pid}: ${ended.error}`);
    process.exit(255);
  }
  return endLike(ended.exitCode ?? null, ended.signal ?? null);
}
