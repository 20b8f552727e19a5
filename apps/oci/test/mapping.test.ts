import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mapConfig, parseCpuList, UnsupportedField } from '../src/mapping.js';
import { makeMountPoint } from '../src/mount-points.js';
import type { OciConfig } from '../src/spec.js';
import { hasChroot } from '../src/supervise.js';

if (!hasChroot()) {
  console.warn(
    'the chroot mapping test is skipped: this Sandlock has no chroot and fsMount fields yet',
  );
}

// Real samples: `ctr oci spec` and `runc spec` (containerd 1.6.20, runc 1.1.5),
// and the config.json containerd wrote for `ctr run -d --memory-limit 67108864
// --cpus 0.5 --mount type=bind,src=…,dst=/data,options=rbind:ro --annotation
// dev.sandlock.netAllow=example.com:443 --env FOO=bar --cwd /tmp`.
function fixture(name: string): OciConfig {
  return JSON.parse(
    readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'),
  ) as OciConfig;
}

const bundle = mkdtempSync(join(tmpdir(), 'sandlock-oci-mapping-'));
const rootfs = join(bundle, 'rootfs');
mkdirSync(join(rootfs, 'bin'), { recursive: true });
mkdirSync(join(rootfs, 'tmp'));
writeFileSync(join(rootfs, 'bin', 'sh'), '');
writeFileSync(join(rootfs, 'bin', 'sleep'), '');
const bindSource = join(bundle, 'data');
mkdirSync(bindSource);
const scratchDir = join(bundle, 'scratch');
afterAll(() => rmSync(bundle, { recursive: true, force: true }));

const hostMode = { bundle, scratchDir, chroot: false };

function withProcess(config: OciConfig, changes: Record<string, unknown>): OciConfig {
  return { ...config, process: { ...config.process, ...changes } };
}

/** The policy a plan's draft resolves to, once the scratch directories exist. */
function policyOf(config: OciConfig) {
  const plan = mapConfig(config, hostMode);
  for (const dir of plan.scratch) mkdirSync(dir.path, { recursive: true });
  return { plan, policy: plan.draft.resolve() };
}

function refusal(config: OciConfig): string {
  try {
    mapConfig(config, hostMode);
  } catch (error) {
    expect(error).toBeInstanceOf(UnsupportedField);
    return (error as UnsupportedField).field;
  }
  throw new Error('mapConfig did not refuse');
}

describe('ctr oci spec (containerd 1.6 defaults)', () => {
  const config = withProcess(fixture('ctr-oci-spec'), {
    args: ['sh', '-c', 'true'],
    env: ['PATH=/bin'],
  });

  it('becomes a policy: the root writable, a clean environment, the open-file limit', () => {
    const { plan, policy } = policyOf(config);
    expect(policy.fsWrite).toContain(rootfs);
    expect(policy.cleanEnv).toBe(true);
    expect(policy.env).toEqual({ PATH: '/bin' });
    expect(policy.maxOpenFiles).toBe(1024);
    expect(policy.fsRead).toContain('/proc');
    expect(policy.cwd).toBe(`${rootfs}/`);
    expect(plan.argv).toEqual([join(rootfs, 'bin', 'sh'), '-c', 'true']);
    expect(plan.terminal).toBe(false);
    expect(plan.seccomp).toBeUndefined();
  });

  it('gives each tmpfs a private directory, and says what it leaves out', () => {
    const { plan, policy } = policyOf(config);
    // /dev/shm and /run; /dev itself is the sandbox's harmless device nodes.
    expect(plan.scratch.map((dir) => dir.path)).toEqual([
      join(scratchDir, '0'),
      join(scratchDir, '1'),
    ]);
    for (const dir of plan.scratch) expect(policy.fsWrite).toContain(dir.path);
    const warned = plan.warnings.join('\n');
    expect(warned).toContain('process.capabilities: the workload runs with no capability');
    expect(warned).toContain('CAP_SYS_CHROOT');
    expect(warned).toContain('mounts[4]: mqueue on /dev/mqueue is not mounted');
    expect(warned).toContain('mounts[5]: sysfs on /sys is not mounted');
    expect(warned).toContain('linux.namespaces[4]: no network namespace');
    expect(warned).toContain('linux.maskedPaths');
    expect(warned).toContain('linux.cgroupsPath');
  });
});

describe('a config.json of ctr run with limits, a bind mount and an annotation', () => {
  const config = fixture('ctr-run-options');
  config.mounts = config.mounts!.map((mount) =>
    mount.destination === '/data' ? { ...mount, source: bindSource } : mount,
  );

  it('maps the memory limit, the CPU quota, the environment and the working directory', () => {
    const { plan, policy } = policyOf(config);
    expect(policy.maxMemory).toBe(64 << 20);
    expect(policy.maxCpu).toBe(50);
    expect(policy.env).toEqual({ PATH: '/bin', FOO: 'bar' });
    expect(policy.cwd).toBe(join(rootfs, 'tmp'));
    expect(plan.argv).toEqual([join(rootfs, 'bin', 'sleep'), '100']);
    expect(plan.warnings.join('\n')).toContain('linux.resources.cpu.shares: not enforced');
  });

  it('takes network rules from a dev.sandlock.* annotation', () => {
    const { policy } = policyOf(config);
    expect(JSON.stringify(policy.netAllow)).toContain('example.com');
  });

  it('grants a read-only bind mount read-only', () => {
    const { policy } = policyOf(config);
    expect(policy.fsRead).toContain(bindSource);
    expect(policy.fsWrite).not.toContain(bindSource);
  });

  it.skipIf(!hasChroot())(
    'with the emulated chroot: root.path is the chroot, mounts are fsMount entries',
    () => {
      const plan = mapConfig(config, { ...hostMode, chroot: true });
      expect(plan.draft.current('chroot' as never)).toBe(rootfs);
      expect(plan.draft.current('fsMount' as never)).toEqual(
        expect.arrayContaining([
          '/proc:/proc',
          `/dev/shm:${join(scratchDir, '0')}`,
          `/data:${bindSource}:ro`,
          `/run:${join(scratchDir, '1')}`,
          '/dev/tty:/dev/tty',
        ]),
      );
      expect(plan.draft.current('fsWrite')).toEqual(['/']);
      expect(plan.argv).toEqual(['sleep', '100']);
      expect(plan.draft.current('cwd')).toBe('/tmp');
    },
  );
});

describe('runc spec (runc 1.1 defaults)', () => {
  const config = fixture('runc-spec');

  it('a read-only root is granted read-only; the terminal is asked for', () => {
    const { plan, policy } = policyOf(config);
    expect(policy.fsRead).toContain(rootfs);
    expect(policy.fsWrite).not.toContain(rootfs);
    expect(plan.terminal).toBe(true);
    expect(plan.warnings.join('\n')).toContain('cgroup on /sys/fs/cgroup is not mounted');
  });
});

const asRoot = process.getuid?.() === 0;
if (!asRoot) console.warn('process.user as root: skipped, this test does not run as root');

describe('process.user', () => {
  const base = withProcess(fixture('ctr-oci-spec'), { args: ['sh'], env: ['PATH=/bin'] });

  it.skipIf(!asRoot)(
    'as root, another user is what the workload becomes, with its groups and umask',
    () => {
      const { plan } = policyOf(
        withProcess(base, {
          user: { uid: 1000, gid: 1001, additionalGids: [5, 1001, 5], umask: 0o027 },
        }),
      );
      expect(plan.user).toEqual({ uid: 1000, gid: 1001, groups: [5, 1001] });
      expect(plan.umask).toBe(0o027);
      expect(policyOf(withProcess(base, { user: { uid: 0, gid: 0 } })).plan.user).toBeNull();
    },
  );

  it("a tmpfs mount's directory gets the mount's mode and owner (tmpfs(5) defaults: 1777, root)", () => {
    const { plan } = policyOf({
      ...base,
      mounts: [
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs' },
        {
          destination: '/run',
          type: 'tmpfs',
          source: 'tmpfs',
          options: ['mode=750', 'uid=7', 'gid=8'],
        },
      ],
    });
    expect(plan.scratch.map(({ mode, uid, gid }) => ({ mode, uid, gid }))).toEqual([
      { mode: 0o1777, uid: 0, gid: 0 },
      { mode: 0o750, uid: 7, gid: 8 },
    ]);
  });
});

describe('fields that cannot be honoured are refused, naming them', () => {
  const base = withProcess(fixture('ctr-oci-spec'), { args: ['sh'], env: ['PATH=/bin'] });

  it.each([
    ['a uid that is none', withProcess(base, { user: { uid: -1, gid: 0 } }), 'process.user.uid'],
    [
      'a umask past 0777',
      withProcess(base, { user: { uid: 0, gid: 0, umask: 0o1777 } }),
      'process.user.umask',
    ],
    [
      'RLIMIT_AS',
      withProcess(base, { rlimits: [{ type: 'RLIMIT_AS', soft: 1, hard: 1 }] }),
      'process.rlimits[0].type',
    ],
    [
      'an nfs mount',
      { ...base, mounts: [{ destination: '/x', type: 'nfs', source: 'h:/x' }] },
      'mounts[0].type',
    ],
    ['a sysctl', { ...base, linux: { sysctl: { 'net.ipv4.ip_forward': '1' } } }, 'linux.sysctl'],
    [
      'a user namespace',
      { ...base, linux: { namespaces: [{ type: 'user' }] } },
      'linux.namespaces[0]',
    ],
    [
      'a device node',
      { ...base, linux: { devices: [{ path: '/dev/zero', type: 'c', major: 1, minor: 5 }] } },
      'linux.devices',
    ],
    [
      'an annotation for a field annotations may not set',
      { ...base, annotations: { 'dev.sandlock.fsWrite': '/' } },
      'annotations.dev.sandlock.fsWrite',
    ],
    [
      'a program missing from the root',
      withProcess(base, { args: ['python3'] }),
      'process.args[0]',
    ],
    ['a Windows command line', withProcess(base, { commandLine: 'cmd' }), 'process.commandLine'],
    ['an unknown top-level key', { ...base, solaris: {} }, 'solaris'],
    ['a 2.x spec', { ...base, ociVersion: '2.0.0' }, 'ociVersion'],
  ])('%s', (_what, config, field) => {
    expect(refusal(config as OciConfig)).toBe(field);
  });

  it("Docker's network sysctls are left out with a warning: they only widen, and would be the host's", () => {
    const plan = mapConfig(
      {
        ...base,
        linux: {
          sysctl: {
            'net.ipv4.ip_unprivileged_port_start': '0',
            'net.ipv4.ping_group_range': '0 2147483647',
          },
        },
      },
      hostMode,
    );
    const warned = plan.warnings.join('\n');
    expect(warned).toContain('linux.sysctl: net.ipv4.ip_unprivileged_port_start = 0 not set');
    expect(warned).toContain('linux.sysctl: net.ipv4.ping_group_range = 0 2147483647 not set');
  });

  it('other annotations are left alone', () => {
    const plan = mapConfig(
      { ...base, annotations: { 'io.kubernetes.cri.container-type': 'container' } },
      hostMode,
    );
    expect(plan.argv[0]).toBe(join(rootfs, 'bin', 'sh'));
  });
});

describe('cpuset.cpus', () => {
  it('reads the kernel list format', () => {
    expect(parseCpuList('0-2,5', 'x')).toEqual([0, 1, 2, 5]);
    expect(() => parseCpuList('2-1', 'x')).toThrow(UnsupportedField);
    expect(() => parseCpuList('a', 'x')).toThrow(/not a CPU list/);
  });
});

describe('mount points made inside the root (makeMountPoint)', () => {
  const root = mkdtempSync(join(tmpdir(), 'sandlock-oci-mountpoint-'));
  const outside = mkdtempSync(join(tmpdir(), 'sandlock-oci-outside-'));
  mkdirSync(join(root, 'run'));
  mkdirSync(join(root, 'var'));
  symlinkSync('../run', join(root, 'var', 'run'));
  // An image's absolute symlink names a path of the image, not the host's.
  symlinkSync(outside, join(root, 'escape'));
  symlinkSync('/..', join(root, 'up'));
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it("follows the image's symlinks inside the root and makes what is missing", () => {
    expect(makeMountPoint(root, '/var/run/secrets/kubernetes.io/serviceaccount', 'dir')).toBe(
      '/run/secrets/kubernetes.io/serviceaccount',
    );
    expect(statSync(join(root, 'run/secrets/kubernetes.io/serviceaccount')).isDirectory()).toBe(
      true,
    );
    expect(makeMountPoint(root, '/etc/deep/hostname', 'file')).toBe('/etc/deep/hostname');
    expect(statSync(join(root, 'etc/deep/hostname')).isFile()).toBe(true);
    // Made already: the same answer, nothing changed.
    expect(makeMountPoint(root, '/etc/deep/hostname', 'file')).toBe('/etc/deep/hostname');
    expect(makeMountPoint(root, '/', 'dir')).toBe('/');
  });

  it('never makes anything outside the root, whatever the symlinks say', () => {
    // A symlink dangling inside the root is left as it is (the mount is then not reachable).
    expect(makeMountPoint(root, '/escape/made', 'dir')).toBe('/escape/made');
    expect(existsSync(join(outside, 'made'))).toBe(false);
    expect(makeMountPoint(root, '/up/../../x/y', 'dir')).toBe('/x/y');
    expect(statSync(join(root, 'x/y')).isDirectory()).toBe(true);
  });
});
