import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Supervisor } from '@sandlock/dispatch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionPolicy } from '../../../tools/test-support/supervised.js';
import {
  HOSTNAME_MODULE,
  HOSTNAME_SYSCALLS,
  NUM_CPUS_MODULE,
  NUM_CPUS_SYSCALLS,
} from '../src/index.js';
import { output, PYTHON, run, SYSTEM_READ } from './helpers.js';

const NODE = process.execPath;
const NAME = 'sandbox-host';

let supervisor: Supervisor;
beforeAll(async () => {
  supervisor = await Supervisor.start({
    modules: [{ module: HOSTNAME_MODULE }, { module: NUM_CPUS_MODULE }],
  });
});
afterAll(() => supervisor?.close());

describe('modules', () => {
  it('are on only for the policy fields they read', () => {
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({}) })).toEqual([]);
    expect(
      supervisor.notifiedSyscalls({ policy: sessionPolicy({ hostname: null, numCpus: null }) }),
    ).toEqual([]);
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ hostname: NAME }) })).toEqual(
      [...HOSTNAME_SYSCALLS].sort(),
    );
    expect(supervisor.notifiedSyscalls({ policy: sessionPolicy({ numCpus: 3 }) })).toEqual(
      [...NUM_CPUS_SYSCALLS].sort(),
    );
  });
});

describe('hostname', () => {
  const policy = { hostname: NAME };

  it('uname -n, cat /etc/hostname, Python and Node agree', async () => {
    expect(await output(supervisor, ['/bin/uname', '-n'], { policy })).toBe(`${NAME}\n`);
    expect(await output(supervisor, ['/bin/cat', '/etc/hostname'], { policy })).toBe(`${NAME}\n`);
    expect(await output(supervisor, ['/bin/cat', '/proc/sys/kernel/hostname'], { policy })).toBe(
      `${NAME}\n`,
    );
    const python = await output(
      supervisor,
      [PYTHON, '-c', 'import socket, os; print(socket.gethostname()); print(os.uname().nodename)'],
      { policy },
    );
    expect(python).toBe(`${NAME}\n${NAME}\n`);
    expect(
      await output(supervisor, [NODE, '-e', 'console.log(require("os").hostname())'], { policy }),
    ).toBe(`${NAME}\n`);
  });

  it('hostname(1) agrees', async (context) => {
    const program = ['/bin/hostname', '/usr/bin/hostname'].find((path) => existsSync(path));
    if (program === undefined) {
      console.log('skipped: no hostname(1) on this machine');
      context.skip();
      return;
    }
    expect(await output(supervisor, [program], { policy })).toBe(`${NAME}\n`);
  });

  it('keeps the other uname fields real', async () => {
    const real = (await output(supervisor, ['/bin/uname', '-srvm'], { policy: {} })).trim();
    expect((await output(supervisor, ['/bin/uname', '-srvm'], { policy })).trim()).toBe(real);
    expect((await output(supervisor, ['/bin/uname', '-a'], { policy })).split(' ')[1]).toBe(NAME);
  });

  it('serves /etc/hostname relative to the cwd and to a dirfd, read-only, honouring O_CLOEXEC', async () => {
    const script = `
import ctypes, os, fcntl
libc = ctypes.CDLL(None, use_errno=True)
os.chdir('/etc')
print(open('hostname').read(), end='')
d = os.open('/etc', os.O_RDONLY | os.O_DIRECTORY)
fd = libc.openat(d, b'hostname', os.O_RDONLY)
print(os.read(fd, 100).decode(), end='')
print(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY)
print(bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
try:
    os.write(fd, b'x'); print('wrote')
except OSError as e:
    print(e.errno == 9)
fd2 = os.open('/etc/../etc/./hostname', os.O_RDONLY | os.O_CLOEXEC)
print(bool(fcntl.fcntl(fd2, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
print(os.read(fd2, 100).decode(), end='')
`;
    expect(await output(supervisor, [PYTHON, '-c', script], { policy })).toBe(
      `${NAME}\n${NAME}\nTrue\nFalse\nTrue\nTrue\n${NAME}\n`,
    );
  });

  it('follows a symlink to /etc/hostname', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'procfs-'));
    try {
      symlinkSync('/etc/hostname', join(dir, 'name'));
      symlinkSync('/etc', join(dir, 'etc'));
      const fsRead = [...SYSTEM_READ, dir];
      expect(
        await output(supervisor, ['/bin/cat', join(dir, 'name'), join(dir, 'etc/hostname')], {
          policy,
          fsRead,
        }),
      ).toBe(`${NAME}\n${NAME}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('works when /etc is not readable (the notification comes before Landlock)', async () => {
    const fsRead = SYSTEM_READ.filter((path) => path !== '/etc');
    expect(await output(supervisor, ['/bin/cat', '/etc/hostname'], { policy, fsRead })).toBe(
      `${NAME}\n`,
    );
    // Other files of /etc are still refused by Landlock.
    const other = await run(supervisor, ['/bin/cat', '/etc/passwd'], { policy, fsRead });
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/Permission denied/);
  });

  it('leaves other opens and a write-open alone', async () => {
    const passwd = readFileSync('/etc/passwd', 'utf8');
    expect(await output(supervisor, ['/bin/cat', '/etc/passwd'], { policy })).toBe(passwd);
    // A write-open reaches the real file, which Landlock refuses (read-only /etc).
    const write = await run(supervisor, [PYTHON, '-c', "open('/etc/hostname', 'w')"], { policy });
    expect(write.stderr).toMatch(/PermissionError/);
  });

  it('resolves the name through /etc/hosts, without the real name', async () => {
    const readable = { ...policy, fsRead: SYSTEM_READ };
    expect(await output(supervisor, ['/usr/bin/getent', 'hosts', NAME], { policy: readable })).toBe(
      `127.0.1.1       ${NAME}\n`,
    );
    const python = await output(
      supervisor,
      [PYTHON, '-c', 'import socket; print(socket.gethostbyname(socket.gethostname()))'],
      { policy: readable },
    );
    expect(python).toBe('127.0.1.1\n');
    const fqdn = ['/bin/hostname', '/usr/bin/hostname'].find((path) => existsSync(path));
    if (fqdn !== undefined) {
      expect(await output(supervisor, [fqdn, '-f'], { policy: readable })).toBe(`${NAME}\n`);
    }
    const hosts = await output(supervisor, ['/bin/cat', '/etc/hosts'], { policy: readable });
    expect(hosts.endsWith(`127.0.1.1\t${NAME}\n`)).toBe(true);
    const real = hostname();
    for (const line of hosts.split('\n')) {
      expect(line.split(/\s+/).slice(1)).not.toContain(real);
    }
    // The real host name no longer resolves from /etc/hosts.
    const gone = await run(supervisor, ['/usr/bin/getent', 'hosts', real], { policy: readable });
    expect(gone.stdout).not.toMatch(new RegExp(`\\s${real}$`, 'm'));
  });

  it('leaves /etc/hosts alone when the policy does not let the sandbox read it', async () => {
    const fsRead = SYSTEM_READ.filter((path) => path !== '/etc');
    const refused = await run(supervisor, ['/bin/cat', '/etc/hosts'], {
      policy: { ...policy, fsRead, fsDeny: [] },
      fsRead,
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/Permission denied/);
    const denied = await run(supervisor, ['/bin/cat', '/etc/hosts'], {
      policy: { ...policy, fsRead: SYSTEM_READ, fsDeny: ['/etc/hosts'] },
    });
    // Landlock still reads /etc here (the helper's fsRead); the module did not answer.
    expect(denied.stdout).toBe(readFileSync('/etc/hosts', 'utf8'));
  });

  it('cuts a name longer than 64 bytes', async () => {
    const long = 'x'.repeat(80);
    // The policy refuses such a name; the module cuts what it is given all the same.
    const view = { ...sessionPolicy(), hostname: long };
    expect(await output(supervisor, ['/bin/uname', '-n'], { policy: {}, view })).toBe(
      `${'x'.repeat(64)}\n`,
    );
  });

  it('fails uname with EFAULT on a bad pointer', async () => {
    const script = `
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.syscall(63, ctypes.c_void_p(8)), ctypes.get_errno())
`;
    if (process.arch !== 'x64') return;
    expect(await output(supervisor, [PYTHON, '-c', script], { policy })).toBe('-1 14\n');
  });

  it('is off without the policy field', async () => {
    expect(await output(supervisor, ['/bin/uname', '-n'], { policy: {} })).toBe(`${hostname()}\n`);
  });
});

describe('numCpus', () => {
  for (const count of [1, 3]) {
    describe(`${count} CPUs`, () => {
      const policy = { numCpus: count };

      it('nproc, Python os.cpu_count() and Node os.cpus() agree', async () => {
        expect(await output(supervisor, ['/usr/bin/nproc'], { policy })).toBe(`${count}\n`);
        const python = await output(
          supervisor,
          [
            PYTHON,
            '-c',
            "import os; print(os.cpu_count(), len(os.sched_getaffinity(0)), os.sysconf('SC_NPROCESSORS_ONLN'))",
          ],
          { policy },
        );
        expect(python).toBe(`${count} ${count} ${count}\n`);
        const node = await output(
          supervisor,
          [
            NODE,
            '-e',
            'const os = require("os"); console.log(os.cpus().length, os.availableParallelism())',
          ],
          { policy },
        );
        expect(node).toBe(`${count} ${count}\n`);
      });

      it('serves /proc/cpuinfo, /proc/stat and the /sys CPU lists', async () => {
        const cpuinfo = await output(supervisor, ['/bin/cat', '/proc/cpuinfo'], { policy });
        expect(cpuinfo.match(/^processor\s*:/gm)).toHaveLength(count);
        expect(cpuinfo).toMatch(new RegExp(`^processor\\s*: ${count - 1}$`, 'm'));
        const stat = await output(supervisor, ['/bin/cat', '/proc/stat'], { policy });
        expect(stat.match(/^cpu\d+ /gm)).toHaveLength(count);
        expect(stat).toMatch(/^cpu /m);
        expect(stat).toMatch(/^ctxt /m);
        const lists = await output(
          supervisor,
          [
            '/bin/cat',
            '/sys/devices/system/cpu/online',
            '/sys/devices/system/cpu/present',
            '/sys/devices/system/cpu/possible',
          ],
          { policy },
        );
        const list = count === 1 ? '0\n' : `0-${count - 1}\n`;
        expect(lists).toBe(list.repeat(3));
      });
    });
  }

  it('serves opens through /proc/self, a relative path and openat2', async () => {
    if (process.arch !== 'x64') return;
    const script = `
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
os.chdir('/proc')
print(open('/proc/self/../cpuinfo').read().count('processor'), open('cpuinfo').read().count('processor'))
how = struct.pack('QQQ', os.O_RDONLY, 0, 0)
fd = libc.syscall(437, -100, b'/sys/devices/system/cpu/online', how, len(how))
print(os.read(fd, 100).decode(), end='')
`;
    expect(await output(supervisor, [PYTHON, '-c', script], { policy: { numCpus: 3 } })).toBe(
      '3 3\n0-2\n',
    );
  });

  it('follows the raw sched_getaffinity conventions', async () => {
    if (process.arch !== 'x64') return;
    // Raw syscall 204: the byte count; EINVAL for a length that is not a
    // multiple of 8; a mask of the first N CPUs; ESRCH for a missing pid.
    const script = `
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
def call(pid, n):
    ctypes.set_errno(0)
    r = libc.syscall(204, pid, n, buf)
    return r, ctypes.get_errno()
r, e = call(0, 256)
print(r, e, buf.raw[0])
print(*call(0, 12))
print(*call(0, 8))
print(call(0x3fffffff, 256)[1])
`;
    const real = await output(supervisor, [PYTHON, '-c', script], { policy: {} });
    const virtual = await output(supervisor, [PYTHON, '-c', script], { policy: { numCpus: 3 } });
    const [realFirst] = real.split('\n');
    const size = realFirst!.split(' ')[0];
    expect(virtual).toBe(`${size} 0 7\n-1 22\n8 0\n3\n`);
    expect(real.split('\n').slice(1)).toEqual(virtual.split('\n').slice(1));
  });

  it('is off without the policy field', async () => {
    expect(await output(supervisor, ['/usr/bin/nproc'], { policy: {} })).toBe(
      `${Math.min(cpus().length, readFileSync('/proc/cpuinfo', 'utf8').match(/^processor/gm)!.length)}\n`,
    );
  });

  it('works together with the hostname module', async () => {
    const policy = { hostname: NAME, numCpus: 1 };
    expect(
      await output(
        supervisor,
        [PYTHON, '-c', 'import os, socket; print(os.cpu_count(), socket.gethostname())'],
        { policy },
      ),
    ).toBe(`1 ${NAME}\n`);
  });
});
