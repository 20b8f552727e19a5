// What a sandbox needs of the calls that reach into another process, which a
// container's default seccomp profile may refuse (see @sandlock/sys access.ts).
import { remoteAccess } from '@sandlock/sys';

/** The policy features that need the caller's own descriptors (pidfd_getfd), by module. */
export const DESCRIPTOR_FEATURES: Readonly<Record<string, string>> = {
  destinations: 'network address rules (netAllow/netDeny), unix socket paths and HTTP rules',
  binds: 'UDP rules, netDenyBind and portRemap',
  'port-names': 'portRemap',
  'socket-buffers': 'maxMemory',
  'deterministic-dirs': 'deterministicDirs',
  cow: 'workdir (copy-on-write)',
};

/** The errno behind a refused pidfd_getfd, for messages. */
export function pidfdGetfdMissing(): string | null {
  const access = remoteAccess();
  return access.pidfdGetfd ? null : (access.detail.pidfdGetfd ?? 'refused');
}

/**
 * The message a sandbox that needs `modules` (and `maxMemory`) is refused
 * with where pidfd_getfd is refused; null when nothing is missing.
 */
export function descriptorRefusal(modules: readonly string[], maxMemory: boolean): string | null {
  const missing = pidfdGetfdMissing();
  if (missing === null) return null;
  const features = new Set(modules.map((name) => DESCRIPTOR_FEATURES[name] ?? `module ${name}`));
  if (maxMemory) features.add('maxMemory');
  if (features.size === 0) return null;
  return (
    `sandlock: this host refuses pidfd_getfd (${missing}), which ${[...features].join('; ')} ` +
    `${features.size === 1 ? 'needs' : 'need'}: add CAP_SYS_PTRACE (docker run --cap-add SYS_PTRACE), ` +
    'use a seccomp profile that allows pidfd_getfd, or leave these out of the policy'
  );
}
