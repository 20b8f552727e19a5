import { type Arch, AUDIT_ARCH, hasSyscall, syscallNumber } from '@sandlock/sys';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  actionValue,
  allow,
  compileDenyOnlyFilter,
  compileSandboxFilter,
  defaultDenyList,
  errno,
  killProcess,
  metadataCalls,
  notify,
  runFilter,
  type SandboxFilterOptions,
  sandboxRules,
  seccompFilterStep,
} from '../src/index.js';
import { evaluateRules } from './support/reference-evaluator.js';
import { call, raw } from './support/seccomp-data.js';

const ALLOW = actionValue(allow);
const KILL = actionValue(killProcess);
const NOTIFY = actionValue(notify);
const EPERM = actionValue(errno(1));
const ENOSYS = actionValue(errno(38));
const EACCES = actionValue(errno(13));
const ARCHES = ['x86_64', 'aarch64'] as const;

function verdicts(options: SandboxFilterOptions & { arch: Arch }) {
  const { instructions } = compileSandboxFilter(options);
  return (name: string, args: readonly (number | bigint)[] = []) =>
    runFilter(instructions, call(options.arch, name, args));
}

describe('defaultDenyList', () => {
  it('holds the reference list per arch, port I/O only on x86_64', () => {
    const x86 = defaultDenyList('x86_64');
    const arm = defaultDenyList('aarch64');
    for (const name of [
      'mount',
      'unshare',
      'setns',
      'ptrace',
      'bpf',
      'io_uring_setup',
      'personality',
    ]) {
      expect(x86).toContain(name);
      expect(arm).toContain(name);
    }
    expect(x86).toContain('ioperm');
    expect(x86).toContain('iopl');
    expect(arm).not.toContain('ioperm');
    expect(arm).not.toContain('iopl');
    // Holes of the reference: the fd-based mount API and kexec_file_load.
    for (const name of ['fsopen', 'fsmount', 'move_mount', 'open_tree', 'kexec_file_load']) {
      expect(x86).toContain(name);
      expect(arm).toContain(name);
    }
    // System V IPC: the host's IPC namespace, out of Landlock's reach.
    for (const name of ['shmget', 'shmat', 'msgget', 'msgrcv', 'semget', 'semtimedop']) {
      expect(x86).toContain(name);
      expect(arm).toContain(name);
    }
    for (const arch of ARCHES) {
      for (const name of defaultDenyList(arch)) expect(hasSyscall(name, arch), name).toBe(true);
    }
  });

  it.each(ARCHES)('denies every listed call with EPERM on %s', (arch) => {
    const verdict = verdicts({ arch });
    for (const name of defaultDenyList(arch)) {
      if (name === 'personality') continue;
      expect(verdict(name), name).toBe(EPERM);
    }
    expect(verdict('read')).toBe(ALLOW);
    expect(verdict('openat')).toBe(ALLOW);
  });
});

describe.each(ARCHES)('sandbox filter on %s', (arch) => {
  const verdict = verdicts({ arch });

  it('kills other ABIs', () => {
    const { instructions } = compileSandboxFilter({ arch });
    const other = arch === 'x86_64' ? AUDIT_ARCH.aarch64 : AUDIT_ARCH.x86_64;
    expect(runFilter(instructions, raw(other, 0))).toBe(KILL);
    expect(runFilter(instructions, raw(AUDIT_ARCH.i386, 20))).toBe(KILL);
  });

  it('refuses namespace flags on clone, lets threads and forks through', () => {
    const SIGCHLD = 17;
    expect(verdict('clone', [0x40000000 | SIGCHLD])).toBe(EPERM); // CLONE_NEWNET
    expect(verdict('clone', [0x20000])).toBe(EPERM); // CLONE_NEWNS
    expect(verdict('clone', [0x10000000])).toBe(EPERM); // CLONE_NEWUSER
    expect(verdict('clone', [SIGCHLD])).toBe(ALLOW);
    expect(verdict('clone', [0x003d0f00])).toBe(ALLOW); // glibc's pthread_create flags
  });

  it('answers clone3 with ENOSYS', () => {
    expect(verdict('clone3', [0, 88])).toBe(ENOSYS);
  });

  it('refuses stream sockets that are not TCP (MPTCP, SCTP): Landlock covers TCP only', () => {
    const AF_INET = 2;
    const AF_INET6 = 10;
    const SOCK_STREAM = 1;
    const SOCK_NONBLOCK = 0o4000;
    for (const family of [AF_INET, AF_INET6]) {
      expect(verdict('socket', [family, SOCK_STREAM, 0])).toBe(ALLOW);
      expect(verdict('socket', [family, SOCK_STREAM | SOCK_NONBLOCK, 6])).toBe(ALLOW);
      expect(verdict('socket', [family, SOCK_STREAM, 262])).toBe(EPERM); // IPPROTO_MPTCP
      expect(verdict('socket', [family, SOCK_STREAM | SOCK_NONBLOCK, 262])).toBe(EPERM);
      expect(verdict('socket', [family, SOCK_STREAM, 132])).toBe(EPERM); // IPPROTO_SCTP
      expect(verdict('socket', [family, 5, 0])).toBe(EPERM); // SOCK_SEQPACKET
    }
    expect(verdict('socket', [1, SOCK_STREAM, 0])).toBe(ALLOW); // AF_UNIX
  });

  it('refuses calls on another process by pid: prlimit64, scheduling and I/O priorities', () => {
    for (const name of ['prlimit64', 'sched_setscheduler', 'sched_setparam', 'sched_setattr']) {
      expect(verdict(name, [0, 0, 0, 0]), name).toBe(ALLOW);
      expect(verdict(name, [1234, 0, 0, 0]), name).toBe(EPERM);
    }
    expect(verdict('migrate_pages', [1234, 0, 0, 0])).toBe(EPERM);
    expect(verdict('move_pages', [0, 0, 0, 0, 0, 0])).toBe(ALLOW);
    expect(verdict('setpriority', [0, 0, 10])).toBe(ALLOW); // PRIO_PROCESS, itself
    expect(verdict('setpriority', [0, 1234, 10])).toBe(EPERM);
    expect(verdict('setpriority', [1, 0, 10])).toBe(ALLOW); // PRIO_PGRP, its own group
    expect(verdict('setpriority', [2, 0, 10])).toBe(EPERM); // PRIO_USER: every process of the uid
    expect(verdict('ioprio_set', [1, 0, 0])).toBe(ALLOW);
    expect(verdict('ioprio_set', [1, 1234, 0])).toBe(EPERM);
    expect(verdict('ioprio_set', [3, 0, 0])).toBe(EPERM); // IOPRIO_WHO_USER
    expect(verdict('sched_setaffinity', [1234, 8, 0])).toBe(ALLOW); // threads pin themselves by tid
  });

  it('refuses metadata changes with EACCES when asked (denyMetadata)', () => {
    const denying = verdicts({ arch, denyMetadata: true });
    for (const name of metadataCalls(arch)) {
      expect(denying(name, [0, 0, 0, 0]), name).toBe(EACCES);
      expect(verdict(name, [0, 0, 0, 0]), name).toBe(ALLOW);
    }
    expect(metadataCalls('x86_64')).toContain('chmod');
    expect(metadataCalls('aarch64')).not.toContain('chmod'); // fchmodat only there
    expect(metadataCalls('aarch64')).toContain('fchmodat');
    // chown too: it changes the group of a file its caller owns, and clears set-id bits.
    expect(metadataCalls('aarch64')).toEqual(expect.arrayContaining(['fchown', 'fchownat']));
    expect(metadataCalls('x86_64')).toEqual(expect.arrayContaining(['chown', 'lchown']));
  });

  it('answers listmount and statmount with ENOSYS (they list every mount)', () => {
    expect(verdict('listmount', [0, 0, 0, 0])).toBe(ENOSYS);
    expect(verdict('statmount', [0, 0, 0, 0])).toBe(ENOSYS);
  });

  it('refuses TIOCSTI and TIOCLINUX on the low 32 bits of the request', () => {
    expect(verdict('ioctl', [0, 0x5412])).toBe(EPERM);
    expect(verdict('ioctl', [0, 0x541c])).toBe(EPERM);
    expect(verdict('ioctl', [0, 0x1_0000_5412n])).toBe(EPERM);
    expect(verdict('ioctl', [0, 0xdead_beef_0000_541cn])).toBe(EPERM);
    expect(verdict('ioctl', [0, 0x5413])).toBe(ALLOW); // TIOCGWINSZ
    // FS_IOC_SETFLAGS (64- and 32-bit) and FS_IOC_FSSETXATTR: attribute flags.
    expect(verdict('ioctl', [0, 0x40086602])).toBe(EPERM);
    expect(verdict('ioctl', [0, 0x40046602])).toBe(EPERM);
    expect(verdict('ioctl', [0, 0x401c5820])).toBe(EPERM);
    expect(verdict('ioctl', [0, 0x80086601])).toBe(ALLOW); // FS_IOC_GETFLAGS
    // file_setattr: FS_IOC_FSSETXATTR as a syscall; file_getattr only reads.
    expect(verdict('file_setattr', [-100, 0, 0, 24, 0])).toBe(EPERM);
    expect(verdict('file_getattr', [-100, 0, 0, 24, 0])).toBe(ALLOW);
  });

  it('refuses the three prctl options', () => {
    expect(verdict('prctl', [4, 1])).toBe(EPERM); // PR_SET_DUMPABLE
    expect(verdict('prctl', [28, 0])).toBe(EPERM); // PR_SET_SECUREBITS
    expect(verdict('prctl', [0x59616d61, 0])).toBe(EPERM); // PR_SET_PTRACER
    expect(verdict('prctl', [0x1_0000_0004n, 1])).toBe(EPERM);
    expect(verdict('prctl', [3])).toBe(ALLOW); // PR_GET_DUMPABLE
    expect(verdict('prctl', [38, 1])).toBe(ALLOW); // PR_SET_NO_NEW_PRIVS
  });

  it('refuses netlink sockets, however the domain register is dressed', () => {
    expect(verdict('socket', [16, 3, 0])).toBe(EPERM);
    expect(verdict('socket', [0x1_0000_0010n, 3, 0])).toBe(EPERM);
    expect(verdict('socket', [2, 1, 0])).toBe(ALLOW);
    expect(verdict('socket', [2, 2, 0])).toBe(ALLOW); // UDP allowed unless asked
    expect(verdict('socket', [17, 3, 0])).toBe(ALLOW); // packet sockets too
  });

  it('refuses raw and packet sockets when asked', () => {
    const raw = verdicts({ arch, denyRawSockets: true });
    const SOCK_CLOEXEC = 0o2000000;
    const SOCK_NONBLOCK = 0o4000;
    expect(raw('socket', [2, 3, 1])).toBe(EPERM);
    expect(raw('socket', [10, 3 | SOCK_CLOEXEC | SOCK_NONBLOCK, 58])).toBe(EPERM);
    expect(raw('socket', [0x7_0000_0002n, 0x9_0000_0003n, 1])).toBe(EPERM);
    expect(raw('socket', [17, 3, 0x300])).toBe(EPERM); // AF_PACKET, SOCK_RAW
    expect(raw('socket', [17, 2, 0x300])).toBe(EPERM); // AF_PACKET, SOCK_DGRAM
    expect(raw('socket', [2, 10, 0x300])).toBe(EPERM); // AF_INET, SOCK_PACKET
    expect(raw('socket', [2, 1, 0])).toBe(ALLOW);
    expect(raw('socket', [2, 2, 0])).toBe(ALLOW);
    expect(raw('socket', [1, 3, 0])).toBe(ALLOW); // AF_UNIX has no raw type; not ours to judge
  });

  it('notifies sendto only with a destination address', () => {
    const notifying = verdicts({ arch, notify: ['sendto'] });
    expect(notifying('sendto', [3, 0x1000, 4, 0, 0, 0])).toBe(ALLOW);
    expect(notifying('sendto', [3, 0x1000, 4, 0, 0x2000, 16])).toBe(NOTIFY);
    expect(notifying('sendto', [3, 0x1000, 4, 0, 0x1_0000_0000n, 16])).toBe(NOTIFY);
  });

  it('makes UDP and ICMP datagram sockets only when asked', () => {
    const none = verdicts({ arch, datagrams: { udp: false, icmp: false } });
    expect(none('socket', [2, 2, 0])).toBe(EACCES);
    expect(none('socket', [10, 2 | 0o2000000, 0])).toBe(EACCES);
    expect(none('socket', [2, 2, 17])).toBe(EACCES);
    expect(none('socket', [2, 2, 0x1_0000_0011n])).toBe(EACCES); // int protocol: still UDP
    expect(none('socket', [10, 2, 136])).toBe(EACCES); // UDP-Lite
    expect(none('socket', [2, 2, 1])).toBe(EACCES); // ICMP "ping" socket
    expect(none('socket', [10, 2, 58])).toBe(EACCES);
    expect(none('socket', [2, 1, 0])).toBe(ALLOW);
    expect(none('socket', [2, 3, 1])).toBe(ALLOW);
    expect(none('socket', [1, 2, 0])).toBe(ALLOW); // AF_UNIX datagrams
    const udp = verdicts({ arch, datagrams: { udp: true, icmp: false } });
    expect(udp('socket', [2, 2, 0])).toBe(ALLOW);
    expect(udp('socket', [10, 2, 17])).toBe(ALLOW);
    expect(udp('socket', [2, 2, 1])).toBe(EACCES);
    const icmp = verdicts({ arch, datagrams: { udp: false, icmp: true } });
    expect(icmp('socket', [2, 2, 0])).toBe(EACCES);
    expect(icmp('socket', [2, 2, 1])).toBe(ALLOW);
    expect(icmp('socket', [10, 2, 58])).toBe(ALLOW);
  });

  it('lets the personality query through and nothing else', () => {
    expect(verdict('personality', [0xffffffff])).toBe(ALLOW);
    expect(verdict('personality', [0x1_ffff_ffffn])).toBe(ALLOW); // unsigned int: same query
    expect(verdict('personality', [0])).toBe(EPERM);
    expect(verdict('personality', [0x0040000])).toBe(EPERM);
  });

  it('uses the errno of each deny entry, and a user list replaces the default', () => {
    const custom = verdicts({ arch, deny: ['mount', { name: 'getpid', errno: 13 }] });
    expect(custom('mount')).toBe(EPERM);
    expect(custom('getpid')).toBe(actionValue(errno(13)));
    expect(custom('unshare')).toBe(ALLOW);
    // The argument refusals stay.
    expect(custom('ioctl', [0, 0x5412])).toBe(EPERM);
    expect(custom('clone3')).toBe(ENOSYS);
  });

  it('notifies the notification set, with the wait and thread fast paths', () => {
    const supervised = verdicts({
      arch,
      notify: ['clone', 'clone3', 'wait4', 'waitid', 'openat', 'mount'],
    });
    expect(supervised('openat', [-100, 0, 0])).toBe(NOTIFY);
    expect(supervised('clone', [17])).toBe(NOTIFY);
    expect(supervised('clone', [0x003d0f00])).toBe(ALLOW); // CLONE_THREAD
    expect(supervised('clone', [0x40010000])).toBe(EPERM); // a thread in a new netns is still refused
    expect(supervised('clone3')).toBe(ENOSYS);
    expect(supervised('wait4', [-1, 0, 0])).toBe(NOTIFY);
    expect(supervised('wait4', [-1, 0, 1])).toBe(ALLOW); // WNOHANG
    expect(supervised('wait4', [-1, 0, 0x1_0000_0000n])).toBe(NOTIFY); // int options: no bits set
    expect(supervised('waitid', [0, 0, 0, 0x01000004])).toBe(ALLOW); // WNOWAIT | WEXITED
    expect(supervised('waitid', [0, 0, 0, 4])).toBe(NOTIFY);
    expect(supervised('mount')).toBe(EPERM); // denied beats notified
    expect(supervised('read')).toBe(ALLOW);
  });

  it('has a deny-only variant that never notifies', () => {
    const { instructions } = compileDenyOnlyFilter({ arch });
    const program = instructions;
    expect(program.some((insn) => insn.k === NOTIFY)).toBe(false);
    expect(runFilter(program, call(arch, 'mount'))).toBe(EPERM);
    expect(runFilter(program, call(arch, 'wait4', [-1, 0, 0]))).toBe(ALLOW);
  });

  it('rejects notification names that do not exist on the arch', () => {
    const missing = arch === 'x86_64' ? 'no_such_call' : 'open';
    expect(() => compileSandboxFilter({ arch, notify: [missing] })).toThrow(/unknown syscall/);
  });

  it('agrees with the rule data on random calls', () => {
    const options = {
      arch,
      notify: ['clone', 'wait4', 'waitid', 'openat', 'execve', 'connect', 'bind'],
      denyRawSockets: true,
      datagrams: { udp: false, icmp: false },
    };
    const rules = sandboxRules(options);
    const { instructions } = compileSandboxFilter(options);
    const names = [...rules.syscalls.keys(), 'read', 'write', 'getpid'];
    const word = fc.oneof(
      fc.constantFrom(
        0n,
        1n,
        2n,
        3n,
        4n,
        10n,
        16n,
        17n,
        28n,
        0x5412n,
        0x541cn,
        0x10000n,
        0x40000000n,
      ),
      fc.constantFrom(0xffffffffn, 0x01000000n, 0x59616d61n, 0x1_0000_5412n),
      fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn }),
    );
    const data = fc
      .record({
        name: fc.constantFrom(...names),
        args: fc.array(word, { minLength: 6, maxLength: 6 }),
      })
      .map(({ name, args }) => raw(AUDIT_ARCH[arch], syscallNumber(name, arch), args));
    fc.assert(
      fc.property(data, (input) => {
        expect(runFilter(instructions, input)).toBe(evaluateRules(rules, input));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('seccompFilterStep', () => {
  it('asks for a listener with killable waits only when wanted', () => {
    const filter = compileDenyOnlyFilter();
    expect(seccompFilterStep(filter)).toMatchObject({
      kind: 'seccompFilter',
      flags: 0,
      listener: false,
    });
    expect(seccompFilterStep(filter, { listener: true })).toMatchObject({
      flags: 8 | 32,
      listener: true,
    });
    expect(seccompFilterStep(filter, { listener: true, waitKillableRecv: false })).toMatchObject({
      flags: 8,
    });
  });

  it('keeps the default filter well inside the limits', () => {
    const filter = compileSandboxFilter({
      notify: [
        'clone',
        'vfork',
        'wait4',
        'waitid',
        'openat',
        'getdents64',
        'connect',
        'sendto',
      ].filter((name) => hasSyscall(name)),
      denyRawSockets: true,
      datagrams: { udp: false, icmp: false },
    });
    expect(filter.instructions.length).toBeLessThan(255);
    expect(filter.program.length).toBe(filter.instructions.length * 8);
  });
});
