// An audit log of every program a sandbox runs: one JSON line per execve or
// execveat, with the path and argv the process asked for.
//
// It answers `continue`: it only records. The record is made from a copy of
// the caller's memory, but after CONTINUE the kernel reads the path and argv
// again, and another thread of the caller may have changed them in between.
// For an audit log that is acceptable: the log says what the process asked
// to run, the kernel's own checks (Landlock, permissions) still decide what
// actually runs, and nothing is granted on the strength of the record. It
// would NOT be acceptable for a security decision ("refuse to run
// /usr/bin/curl"): a decision taken on this copy and followed by CONTINUE
// can be bypassed by swapping the string after the check. A module that
// decides must act on its own copy instead (open the file itself and answer
// with that, or refuse), see @sandlock/dispatch's README.

import { closeSync, openSync, writeSync } from 'node:fs';
import { answer, defineModule, type HandlerContext } from '@sandlock/dispatch/module';

export interface AuditExecOptions {
  /** The log file; records are appended, one JSON object per line. */
  log: string;
  /** Arguments recorded per exec, at most (default 1024). */
  maxArgs?: number;
}

/** One line of the log. */
export interface ExecRecord {
  /** ISO time of the call. */
  time: string;
  /** Thread id of the caller. */
  pid: number;
  syscall: 'execve' | 'execveat';
  /** The path as passed (for execveat with AT_EMPTY_PATH: empty). */
  path: string;
  /** The path made absolute against the caller's cwd or dirfd (lexically). */
  resolved: string | null;
  argv: string[];
  /** True when argv had more than maxArgs entries. */
  truncated: boolean;
}

const MAX_ARG_STRLEN = 32 * 4096;

let logFd = -1;
let maxArgs = 1024;

function readArgv(ctx: HandlerContext, address: bigint): { argv: string[]; truncated: boolean } {
  const argv: string[] = [];
  if (address === 0n) return { argv, truncated: false };
  for (let index = 0; index < maxArgs; index++) {
    const pointer = ctx.read(address + BigInt(index * 8), 8).readBigUInt64LE(0);
    if (pointer === 0n) return { argv, truncated: false };
    argv.push(ctx.readString(pointer, MAX_ARG_STRLEN));
  }
  return { argv, truncated: true };
}

function record(ctx: HandlerContext, syscall: ExecRecord['syscall'], argvAddress: bigint) {
  let resolved: string | null;
  try {
    resolved = ctx.resolvePath();
  } catch {
    resolved = null;
  }
  const entry: ExecRecord = {
    time: new Date().toISOString(),
    pid: ctx.pid,
    syscall,
    path: ctx.readPath(),
    resolved,
    ...readArgv(ctx, argvAddress),
  };
  // A synchronous write: the worker thread never returns to its event loop.
  writeSync(logFd, `${JSON.stringify(entry)}\n`);
  return answer.continue();
}

export default defineModule<AuditExecOptions>({
  name: 'audit-exec',
  syscalls: ['execve', 'execveat'],
  setup(options, env) {
    if (env.thread !== 'worker') return;
    if (logFd >= 0) closeSync(logFd);
    logFd = openSync(options.log, 'a');
    maxArgs = options.maxArgs ?? 1024;
  },
  handlers: {
    execve: (ctx) => record(ctx, 'execve', ctx.argsOf('execve').argv),
    execveat: (ctx) => record(ctx, 'execveat', ctx.argsOf('execveat').argv),
  },
});
