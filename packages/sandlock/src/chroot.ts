// A sandbox with a root (the chroot module): the policy as the host sees
// it, for Landlock and the launch, and the program found inside the root.
import { type ExecFile, execFileInRoot, hostPaths, Root } from '@sandlock/chroot';
import { CommandError } from './environment.js';
import { SandboxError } from './errors.js';
import type { Policy } from './policy.js';

export interface ChrootStart {
  /** The policy with host paths (Landlock, the launch's cwd) and the mounts the module serves. */
  policy: Policy;
  exec: ExecFile;
}

export function chrootStart(
  policy: Policy,
  argv: readonly string[],
  env: Record<string, string>,
): ChrootStart {
  if (policy.workdir !== null) {
    throw new SandboxError('sandlock: chroot with a workdir is not supported yet', 'chroot');
  }
  let host: ReturnType<typeof hostPaths>;
  try {
    host = hostPaths(policy);
  } catch (error) {
    throw new SandboxError((error as Error).message, 'chroot');
  }
  const root = Root.open(policy.chroot!, host.fsMount);
  try {
    const exec = execFileInRoot(
      root,
      argv[0]!,
      argv,
      env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      policy.cwd ?? '/',
    );
    return { policy: host.policy as Policy, exec };
  } catch (error) {
    const errno = (error as { errno?: number }).errno;
    throw new CommandError(
      `sandlock: ${argv[0]}: ${(error as Error).message} (inside the root)`,
      errno === 2 ? 'ENOENT' : 'EACCES',
    );
  } finally {
    root.close();
  }
}
