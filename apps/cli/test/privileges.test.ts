// A sandbox started by root has no capabilities: root's privileges that
// neither Landlock nor the deny list covers stay outside.
import { spawn } from 'node:child_process';
import { syscallNumber } from '@sandlock/sys';
import { describe, expect, it } from 'vitest';
import { SYSTEM, sandlock } from './helpers.js';

const root = process.getuid?.() === 0;
if (!root) console.warn('privileges: not root: the sandbox has no capabilities to lose here');

// Raw syscalls, so no libc wrapper second-guesses them: settimeofday(NULL,
// NULL) changes nothing but checks CAP_SYS_TIME; syslog(SYSLOG_ACTION_SIZE_BUFFER)
// checks CAP_SYSLOG (or CAP_SYS_ADMIN); fanotify_init(0, 0) CAP_SYS_ADMIN.
const PROBE = `
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
nr = (${syscallNumber('settimeofday')}, ${syscallNumber('syslog')}, ${syscallNumber('fanotify_init')})
def errno(result):
    return 0 if result >= 0 else ctypes.get_errno()
print(errno(libc.syscall(nr[0], None, None)), errno(libc.syscall(nr[1], 10, None, 0)), errno(libc.syscall(nr[2], 0, 0)))
print(' '.join(line.split()[1] for line in open('/proc/self/status') if line.startswith('Cap')))
`;

describe('sandlock run: privileges', () => {
  it('a sandbox runs without capabilities: no clock setting, kernel log or fanotify, even as root', () => {
    const result = sandlock([
      'run',
      ...SYSTEM,
      '-r',
      '/proc',
      '--',
      '/usr/bin/python3',
      '-c',
      PROBE,
    ]);
    expect(result.stderr).toBe('');
    const [errnos, caps] = result.stdout.trim().split('\n');
    expect(errnos).toBe('1 1 1'); // EPERM each
    const sets = caps!.split(' ');
    // CapInh CapPrm CapEff CapBnd CapAmb: all empty but the bounding set, which
    // no_new_privs makes moot (an exec gains nothing beyond the empty permitted set).
    expect(sets.filter((_, index) => index !== 3)).toEqual(Array(4).fill('0000000000000000'));
  });

  it('cannot act on a host process by pid (prlimit64, setpriority) nor open an MPTCP socket', async () => {
    const host = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    try {
      const probe = `
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def errno(result):
    return 0 if result >= 0 else ctypes.get_errno()
limit = (ctypes.c_uint64 * 2)(1, 1)
old = (ctypes.c_uint64 * 2)()
print(errno(libc.syscall(${syscallNumber('prlimit64')}, ${host.pid}, 0, limit, None)),
      errno(libc.syscall(${syscallNumber('setpriority')}, 0, ${host.pid}, 19)),
      errno(libc.syscall(${syscallNumber('prlimit64')}, 0, 0, None, old)))
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    print('mptcp opened')
except OSError as e:
    print('mptcp', e.errno)
`;
      const result = sandlock(['run', ...SYSTEM, '--', '/usr/bin/python3', '-c', probe]);
      expect(result.stderr).toBe('');
      // EPERM on the host's process, its own limits readable; MPTCP refused.
      expect(result.stdout).toBe('1 1 0\nmptcp 1\n');
      expect(host.exitCode).toBeNull(); // still running: its RLIMIT_CPU untouched
    } finally {
      host.kill();
    }
  });
});
