// The on-behalf rule, tested: the same program run through the supervisor
// and by a process alone under the policy's Landlock domain (the reaper's,
// in which the on-behalf calls are made) with no supervisor at all. What
// the supervisor adds to the kernel's answers is only what the policy's
// rules say and Landlock cannot.
import { close, type LaunchStep, launch } from '@sandlock/sys';
import { collect } from '../../../tools/test-support/index.js';
import { parsePolicy, prepareConfinement } from '../../sandlock/src/index.js';
import { PYTHON, Sandbox, SYSTEM_READ } from './helpers.js';

const ENV = { PATH: '/usr/bin:/bin', LANG: 'C' };

/**
 * The steps of a sandbox with no supervisor, in the reaper's domain only:
 * the layer of the sandbox's own nested in it (after the reaper's fork)
 * refuses, where the supervisor makes every TCP bind, what the reaper does
 * for it, and would leave nothing to compare.
 */
function reaperDomainOnly(steps: readonly LaunchStep[]): LaunchStep[] {
  const reaper = steps.findIndex((step) => step.kind === 'forkReaper');
  return steps.filter((step, index) => index < reaper || step.kind !== 'landlockRestrictSelf');
}

/** `argv`'s stdout as JSON, run alone under `policy`'s Landlock domain and filter. */
export async function alone(argv: string[], policy: Record<string, unknown>): Promise<unknown> {
  const confinement = prepareConfinement(parsePolicy(policy), { notify: [] });
  let launched: ReturnType<typeof launch>;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: ENV,
      steps: reaperDomainOnly(confinement.steps),
      stdio: ['ignore', 'pipe', 'pipe'],
      handshake: false,
    });
  } finally {
    for (const fd of confinement.fds) close(fd);
  }
  const finished = await collect(launched.child);
  if (finished.stderr !== '') throw new Error(finished.stderr);
  return JSON.parse(finished.stdout);
}

/** `argv`'s stdout as JSON, run in a sandbox of `policy` (supervised). */
export async function supervised(
  argv: string[],
  policy: Record<string, unknown>,
): Promise<unknown> {
  const result = await Sandbox.fromPolicy(policy).run(argv, {
    encoding: 'utf8',
    timeout: 60_000,
    env: ENV,
  });
  if (result.stderr !== '' || result.exitCode !== 0) {
    throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

/**
 * `argv` run both ways, one after the other (what one run leaves, a socket
 * file, must not be in the other's way): supervised under `policy`, alone
 * under `alonePolicy` (default the same).
 */
export async function bothWays(
  argv: string[],
  policy: Record<string, unknown>,
  alonePolicy: Record<string, unknown> = policy,
): Promise<{ supervised: unknown; alone: unknown }> {
  const through = await supervised(argv, policy);
  return { supervised: through, alone: await alone(argv, alonePolicy) };
}

const CONNECTS = `
import errno, json, socket, sys
out = []
for port in map(int, sys.argv[1:]):
    s = socket.socket()
    try:
        s.connect(('127.0.0.1', port)); out.append(None)
    except OSError as error:
        out.append(errno.errorcode.get(error.errno, error.errno))
    s.close()
print(json.dumps(out))
`;

/**
 * The same TCP connects made through the supervisor (address rules that
 * allow every loopback port, netConnect ports in Landlock) and alone (the
 * same netConnect ports, no address rule): each port's outcome.
 */
export async function differential(
  ports: number[],
  netConnect: number[],
): Promise<{ supervised: unknown; alone: unknown }> {
  const argv = [PYTHON, '-c', CONNECTS, ...ports.map(String)];
  const policy = { fsRead: SYSTEM_READ, netConnect };
  return bothWays(argv, { ...policy, netAllow: ['tcp://127.0.0.0/8'] }, policy);
}
