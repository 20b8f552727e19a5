import { describe, expect, it } from 'vitest';
import { sandlock } from './helpers.js';

describe('sandlock commands', () => {
  it('prints help for every command, with examples', () => {
    for (const args of [['--help'], ['run', '--help'], ['check', '--help'], ['help', 'run']]) {
      const result = sandlock(args);
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(/^Usage: sandlock/);
      expect(result.stdout).toMatch(/Examples:/);
    }
  });

  it('prints the version', () => {
    expect(sandlock(['--version']).stdout).toMatch(/^sandlock \d+\.\d+\.\d+\n$/);
  });

  it('rejects an unknown command', () => {
    const result = sandlock(['rnu']);
    expect(result.status).toBe(125);
    expect(result.stderr).toMatch(/unknown command 'rnu'/);
  });

  it('check lists kernel features and says whether Sandlock can run', () => {
    const text = sandlock(['check']);
    expect(text.stdout).toMatch(/^Landlock scope signal \(ABI 6\) +(OK|MISSING)/m);
    expect(text.stdout).toMatch(/^seccomp user notification +(OK|MISSING) +\(Linux 5\.0\)/m);
    const json = sandlock(['check', '--json']);
    const report = JSON.parse(json.stdout);
    expect(json.status).toBe(report.ok ? 0 : 1);
    expect(text.status).toBe(json.status);
    const names = report.features.map((feature: { name: string }) => feature.name);
    for (const name of [
      'Landlock',
      'pidfd_getfd',
      'process_vm_readv/writev',
      'seccomp listener handed to the supervisor',
      'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
      'seccomp notification sync wake-up',
      'SECCOMP_IOCTL_NOTIF_ADDFD',
      'openat2 with RESOLVE_*',
      'vDSO clock functions (timeStart)',
      'vDSO writable through /proc/PID/mem (timeStart, randomSeed)',
      'vDSO getrandom (randomSeed turns it off)',
      '/proc/sys/kernel/ns_last_pid',
    ]) {
      expect(names).toContain(name);
    }
  });

  it('check probes what the virtualization features need, on this kernel', () => {
    const report = JSON.parse(sandlock(['check', '--json']).stdout);
    const feature = (name: string) =>
      report.features.find((entry: { name: string }) => entry.name === name);
    // The development machine and CI run Linux 6.18 on x86_64: all of it is there.
    expect(feature('SECCOMP_IOCTL_NOTIF_ADDFD').ok).toBe(true);
    expect(feature('openat2 with RESOLVE_*').ok).toBe(true);
    expect(feature('ptrace of a sandboxed process (PTRACE_SEIZE)')).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^chdir into and exec from a copy-on-write layer/),
    });
    expect(feature('vDSO writable through /proc/PID/mem (timeStart, randomSeed)')).toMatchObject({
      ok: true,
      detail: 'writable',
    });
    expect(feature('vDSO clock functions (timeStart)').detail).toMatch(/clock_gettime/);
    expect(feature('vDSO getrandom (randomSeed turns it off)').detail).toMatch(
      /^(present|absent)$/,
    );
    // Root (CI, the development machine) may mount: maxDisk is the kernel's.
    const tmpfs = feature('tmpfs mount (maxDisk: writes past it fail with ENOSPC)');
    expect(tmpfs).toMatchObject(
      process.getuid?.() === 0
        ? {
            ok: true,
            detail: 'each workdir layer with maxDisk is a tmpfs of that size (diskBound tmpfs)',
          }
        : {
            detail: expect.stringMatching(
              /in a user namespace of its own \(diskBound userns-tmpfs\)$|: maxDisk is measured/,
            ),
          },
    );
  });
});
