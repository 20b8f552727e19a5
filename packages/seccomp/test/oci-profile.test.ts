import { describe, expect, it } from 'vitest';
import {
  actionValue,
  allow,
  compileRuleSet,
  errno,
  killThread,
  OciProfileError,
  type OciSeccompProfile,
  ociProfileRules,
  runFilter,
} from '../src/index.js';
import { call } from './support/seccomp-data.js';

const ARCH = 'x86_64';
const ALLOW = actionValue(allow);
const EPERM = actionValue(errno(1));
const ENOSYS = actionValue(errno(38));

// The shapes of Docker's and containerd's default profiles: an allow list
// with an EPERM default, personality by value, clone without namespace
// flags, clone3 refused with ENOSYS, and socket of any family but AF_VSOCK.
const PROFILE: OciSeccompProfile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  syscalls: [
    {
      names: ['read', 'write', 'execve', 'exit_group', 'not_a_syscall_here'],
      action: 'SCMP_ACT_ALLOW',
    },
    {
      names: ['personality'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }],
    },
    {
      names: ['personality'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }],
    },
    {
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
    {
      names: ['socket'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }],
    },
    { names: ['reboot'], action: 'SCMP_ACT_KILL' },
  ],
};

function decide(profile: OciSeccompProfile, name: string, args: (number | bigint)[] = []): number {
  const filter = compileRuleSet(ociProfileRules(profile, ARCH));
  return runFilter(filter.instructions, call(ARCH, name, args));
}

describe('an OCI seccomp profile', () => {
  it('allows what it lists and refuses the rest with its default errno', () => {
    expect(decide(PROFILE, 'read')).toBe(ALLOW);
    expect(decide(PROFILE, 'execve')).toBe(ALLOW);
    expect(decide(PROFILE, 'mount')).toBe(EPERM);
    expect(decide(PROFILE, 'clone3')).toBe(ENOSYS);
    expect(decide(PROFILE, 'reboot')).toBe(actionValue(killThread));
  });

  it('compares arguments: EQ entries are alternatives, MASKED_EQ masks', () => {
    expect(decide(PROFILE, 'personality', [0])).toBe(ALLOW);
    expect(decide(PROFILE, 'personality', [8])).toBe(ALLOW);
    expect(decide(PROFILE, 'personality', [1])).toBe(EPERM);
    expect(decide(PROFILE, 'clone', [0x11])).toBe(ALLOW);
    expect(decide(PROFILE, 'clone', [0x10000000 /* CLONE_NEWUSER */])).toBe(EPERM);
  });

  it('NE: any family but AF_VSOCK', () => {
    expect(decide(PROFILE, 'socket', [2])).toBe(ALLOW);
    expect(decide(PROFILE, 'socket', [40])).toBe(EPERM);
  });

  it('two conditions on one argument are alternatives, as runc makes them', () => {
    const profile: OciSeccompProfile = {
      defaultAction: 'SCMP_ACT_ERRNO',
      syscalls: [
        {
          names: ['personality'],
          action: 'SCMP_ACT_ALLOW',
          args: [
            { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 8, op: 'SCMP_CMP_EQ' },
          ],
        },
      ],
    };
    expect(decide(profile, 'personality', [8])).toBe(ALLOW);
    expect(decide(profile, 'personality', [3])).toBe(EPERM);
  });

  it.each([
    [{ defaultAction: 'SCMP_ACT_TRACE' }, 'defaultAction'],
    [{ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_AARCH64'] }, 'architectures'],
    [{ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock' }, 'listenerPath'],
    [
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [
          {
            names: ['read'],
            action: 'SCMP_ACT_ERRNO',
            args: [{ index: 2, value: 9, op: 'SCMP_CMP_GT' }],
          },
        ],
      },
      'syscalls[0].args[0].op',
    ],
    [
      {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }],
      },
      'syscalls[0].action',
    ],
  ] as [OciSeccompProfile, string][])(
    'refuses what it cannot express, naming it: %j',
    (profile, field) => {
      expect(() => ociProfileRules(profile, ARCH)).toThrow(OciProfileError);
      try {
        ociProfileRules(profile, ARCH);
      } catch (error) {
        expect((error as OciProfileError).field).toBe(field);
      }
    },
  );
});
