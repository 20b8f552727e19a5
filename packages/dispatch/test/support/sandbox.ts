import { landlockRuleset } from '@sandlock/landlock';
import { compileSandboxFilter, seccompFilterStep } from '@sandlock/seccomp';
import { close, type Launched, type LaunchStep, launch, type StdioEntry } from '@sandlock/sys';
import {
  collect,
  eventually,
  type Finished,
  PYTHON,
  running,
} from '../../../../tools/test-support/index.js';
import type { AttachOptions, Session, Supervisor } from '../../src/index.js';

export interface SuperviseOptions {
  /** Default: what the supervisor's modules need for `policy`. */
  notify?: readonly string[];
  policy?: unknown;
  deny?: readonly string[];
  env?: Record<string, string>;
  stdio?: readonly [StdioEntry, StdioEntry, StdioEntry];
  trackProcesses?: boolean;
  onKill?: (reason: string) => void;
  onRefusal?: AttachOptions['onRefusal'];
}

export interface Supervised {
  launched: Launched;
  /** Null when nothing is notified (no listener). */
  session: Session | null;
  finished: Promise<Finished>;
}

/**
 * Starts `argv` the way a sandbox starts (README of sandlock, "How a sandbox
 * starts"): setsid, no_new_privs, a Landlock domain scoped for signals around
 * a reaper, the reaper fork, then the seccomp filter with a listener; the
 * listener goes to `supervisor` before the program may exec. The sandlock
 * package's prepareConfinement() does the same with a full policy; it is not
 * imported here because sandlock depends on this package.
 */
export async function supervise(
  supervisor: Supervisor,
  argv: readonly string[],
  options: SuperviseOptions = {},
): Promise<Supervised> {
  const notify = options.notify ?? supervisor.notifiedSyscalls({ policy: options.policy });
  const scope = landlockRuleset({
    compatibility: 'best-effort',
    handle: { fs: false, net: false, scopes: ['signal'] },
  }).create();
  const steps: LaunchStep[] = [{ kind: 'setsid' }, { kind: 'noNewPrivs' }];
  if (scope.fd !== null) {
    steps.push({ kind: 'landlockRestrictSelf', rulesetFd: scope.fd, flags: scope.restrictFlags });
  }
  steps.push({
    kind: 'forkReaper',
    parentPid: process.pid,
    killTarget: scope.fd !== null ? -1 : 0,
  });
  steps.push(seccompFilterStep(compileSandboxFilter({ notify }), { listener: notify.length > 0 }));
  let launched: Launched;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: options.env ?? { PATH: '/usr/bin:/bin' },
      steps,
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      handshake: true,
    });
  } finally {
    if (scope.fd !== null) close(scope.fd);
  }
  const finished = collect(launched.child);
  const report = await launched.ready;
  const session =
    notify.length > 0
      ? supervisor.attach(launched.takeListener(), {
          reaperPid: launched.pid,
          programPid: report.pid,
          policy: options.policy,
          deny: options.deny,
          trackProcesses: options.trackProcesses,
          onKill: options.onKill,
          onRefusal: options.onRefusal,
          notified: notify,
        })
      : null;
  await launched.release();
  return { launched, session, finished };
}

export { eventually, PYTHON, running };

/** A URL for a test module in test/support/modules. */
export function testModule(name: string): URL {
  return new URL(`./modules/${name}`, import.meta.url);
}
