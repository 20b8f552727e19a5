import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ARCHES,
  type Arch,
  AUDIT_ARCH,
  byPathCall,
  hasSyscall,
  hostArch,
  PATH_CALLS,
  syscallName,
  syscallNames,
  syscallNumber,
  syscallNumberOrUndefined,
  X32_SYSCALL_BIT,
} from '../src/syscalls/index.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SYSCALLS_DIR = join(REPO_ROOT, 'packages/sys/src/syscalls');
const GENERATOR = join(REPO_ROOT, 'tools/gen-syscalls/generate.mjs');

describe('well-known syscall numbers', () => {
  const expected: Record<Arch, Record<string, number>> = {
    x86_64: {
      read: 0,
      write: 1,
      open: 2,
      fork: 57,
      execve: 59,
      seccomp: 317,
      openat: 257,
      newfstatat: 262,
      clone3: 435,
      pidfd_getfd: 438,
      landlock_create_ruleset: 444,
      landlock_add_rule: 445,
      landlock_restrict_self: 446,
      fchmodat2: 452,
      map_shadow_stack: 453,
    },
    aarch64: {
      fcntl: 25,
      openat: 56,
      newfstatat: 79,
      fstat: 80,
      clone: 220,
      execve: 221,
      mmap: 222,
      seccomp: 277,
      clone3: 435,
      landlock_create_ruleset: 444,
      fchmodat2: 452,
      map_shadow_stack: 453,
    },
  };

  for (const arch of ARCHES) {
    it(`matches on ${arch}`, () => {
      for (const [name, number] of Object.entries(expected[arch])) {
        expect(syscallNumber(name, arch), name).toBe(number);
      }
    });
  }

  it('leaves out the legacy calls aarch64 never had', () => {
    for (const name of ['open', 'stat', 'lstat', 'fork', 'vfork', 'dup2', 'pipe', 'poll']) {
      expect(hasSyscall(name, 'aarch64'), name).toBe(false);
      expect(hasSyscall(name, 'x86_64'), name).toBe(true);
    }
  });

  it('does not expose the 32/64-bit helper names or range markers', () => {
    for (const arch of ARCHES) {
      for (const name of syscallNames(arch)) {
        expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
      }
      expect(hasSyscall('syscalls', arch)).toBe(false);
      expect(hasSyscall('arch_specific_syscall', arch)).toBe(false);
    }
  });

  it('knows the calls newer than the Linux 6.1 headers on both arches', () => {
    for (const arch of ARCHES) {
      expect(syscallNumber('cachestat', arch)).toBe(451);
      expect(syscallNumber('mseal', arch)).toBe(462);
      expect(syscallNumber('file_setattr', arch)).toBe(469);
      expect(syscallNumber('listns', arch)).toBe(470);
    }
  });
});

describe('lookups', () => {
  it('round-trips every name and number', () => {
    for (const arch of ARCHES) {
      const names = syscallNames(arch);
      expect(names.length).toBeGreaterThan(300);
      expect(new Set(names).size).toBe(names.length);
      for (const name of names) {
        const number = syscallNumber(name, arch);
        expect(syscallName(number, arch)).toBe(name);
        expect(syscallNumberOrUndefined(name, arch)).toBe(number);
      }
    }
  });

  it('lists names in number order', () => {
    for (const arch of ARCHES) {
      const numbers = syscallNames(arch).map((name) => syscallNumber(name, arch));
      expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    }
  });

  it('names the syscall and arch when a name is unknown', () => {
    expect(() => syscallNumber('open', 'aarch64')).toThrow(
      new RangeError("unknown syscall 'open' on aarch64"),
    );
    expect(() => syscallNumber('no_such_call', 'x86_64')).toThrow(RangeError);
    expect(syscallNumberOrUndefined('no_such_call', 'x86_64')).toBeUndefined();
  });

  it('does not resolve Object.prototype members', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(hasSyscall(name, 'x86_64')).toBe(false);
    }
  });

  it('returns undefined for unassigned numbers', () => {
    expect(syscallName(244, 'aarch64')).toBeUndefined();
    expect(syscallName(100_000, 'x86_64')).toBeUndefined();
    expect(syscallName(-1, 'x86_64')).toBeUndefined();
  });

  it('defaults to the host architecture', () => {
    expect(syscallNumber('openat')).toBe(syscallNumber('openat', hostArch()));
  });
});

describe('hostArch', () => {
  it('maps Node architecture names', () => {
    expect(hostArch('x64')).toBe('x86_64');
    expect(hostArch('arm64')).toBe('aarch64');
  });

  it('rejects other architectures by name', () => {
    expect(() => hostArch('riscv64')).toThrow(/unsupported architecture 'riscv64'/);
  });
});

describe('ABI constants', () => {
  it('has the AUDIT_ARCH values of <linux/audit.h>', () => {
    // EM_* | __AUDIT_ARCH_64BIT (0x80000000) | __AUDIT_ARCH_LE (0x40000000)
    expect(AUDIT_ARCH.x86_64).toBe((62 | 0x80000000 | 0x40000000) >>> 0);
    expect(AUDIT_ARCH.aarch64).toBe((183 | 0x80000000 | 0x40000000) >>> 0);
    expect(AUDIT_ARCH.i386).toBe(3 | 0x40000000);
    expect(X32_SYSCALL_BIT).toBe(2 ** 30);
  });
});

describe('generated tables', () => {
  const probe = spawnSync(process.execPath, [GENERATOR, '--missing'], { encoding: 'utf8' });
  const missing = probe.status === 0 ? probe.stdout.trim() : `generator failed: ${probe.stderr}`;
  if (missing !== '') {
    console.warn(`skipping the syscall table regeneration test, missing:\n${missing}`);
  }

  it.skipIf(missing !== '')('match a fresh run of tools/gen-syscalls byte for byte', () => {
    const outDir = mkdtempSync(join(tmpdir(), 'sandlock-gen-syscalls-'));
    try {
      const run = spawnSync(process.execPath, [GENERATOR, '--out-dir', outDir], {
        encoding: 'utf8',
      });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      for (const arch of ARCHES) {
        const file = `${arch}.generated.ts`;
        const fresh = readFileSync(join(outDir, file), 'utf8');
        const committed = readFileSync(join(SYSCALLS_DIR, file), 'utf8');
        expect(committed, `${file} is stale: run node tools/gen-syscalls/generate.mjs`).toBe(fresh);
      }
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});

describe('PATH_CALLS', () => {
  it('names each call once, and each is a syscall of some architecture', () => {
    const names = Object.values(PATH_CALLS).flat();
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) {
      expect(
        ARCHES.some((arch) => hasSyscall(name, arch)),
        name,
      ).toBe(true);
    }
  });

  it("gives every call of a kind the kind's value", () => {
    const kinds = Object.fromEntries(Object.keys(PATH_CALLS).map((kind) => [kind, kind]));
    const map = byPathCall(kinds as Record<keyof typeof PATH_CALLS, string>);
    expect(map.renameat2).toBe('rename');
    expect(map.rmdir).toBe('unlink');
    expect(map.lremovexattr).toBe('writeXattr');
    expect(Object.keys(map).length).toBe(Object.values(PATH_CALLS).flat().length);
  });
});
