import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { OciError } from './errors.js';
import type { ResourceLimits } from './mapping.js';
import type { OciProcess } from './spec.js';

/** A request to a container's supervisor, over its control socket (one JSON line each way). */
export type ControlRequest =
  | { op: 'start' }
  | { op: 'kill'; signal: NodeJS.Signals }
  | { op: 'pause' }
  | { op: 'resume' }
  | { op: 'pids' }
  /**
   * Starts `process` in the container; its stdin, stdout and stderr are the
   * caller's descriptors `fds` (the caller: `exec`'s pid-file process).
   */
  | { op: 'exec'; process: OciProcess; fds: [number, number, number] }
  /** Answers once the process `exec` started as `pid` has ended; ending the call kills it. */
  | { op: 'wait'; pid: number }
  | { op: 'signal'; pid: number; signal: NodeJS.Signals }
  /** Changes the container's limits (policy fields), all or none. */
  | { op: 'update'; limits: ResourceLimits };

export type ControlReply =
  | {
      ok: true;
      pids?: number[];
      pid?: number;
      exitCode?: number | null;
      signal?: NodeJS.Signals | null;
    }
  | { ok: false; error: string };

/** How long a call waits for the supervisor: only a hang reaches it. */
const CONTROL_TIMEOUT_MS = 60_000;

/**
 * Sends one request to the supervisor listening on `path` and returns its
 * reply; `timeoutMs` null waits as long as it takes (`wait`).
 */
export function callSupervisor(
  path: string,
  request: ControlRequest,
  timeoutMs: number | null = CONTROL_TIMEOUT_MS,
): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let text = '';
    const timer =
      timeoutMs === null
        ? undefined
        : setTimeout(() => {
            socket.destroy();
            reject(
              new OciError(`the container's supervisor did not answer '${request.op}' in time`),
            );
          }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as ControlReply);
      } catch {
        reject(
          new OciError(`the container's supervisor ended without an answer to '${request.op}'`),
        );
      }
    });
  });
}

/**
 * Listens on `path` and answers each request with `handle`, which is given
 * the connection too (`wait` watches it close).
 */
export function serveControl(
  path: string,
  handle: (request: ControlRequest, connection: Socket) => Promise<ControlReply>,
): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\n');
      if (end < 0) return;
      let request: ControlRequest;
      try {
        request = JSON.parse(text.slice(0, end)) as ControlRequest;
      } catch {
        socket.end(`${JSON.stringify({ ok: false, error: 'bad request' })}\n`);
        return;
      }
      handle(request, socket).then(
        (reply) => socket.end(`${JSON.stringify(reply)}\n`),
        (error: unknown) =>
          socket.end(
            `${JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) })}\n`,
          ),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
