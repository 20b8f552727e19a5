// The same TCP connects made through the supervisor (address rules that
// allow every loopback port, netConnect ports in Landlock) and by a process
// under the same Landlock domain with no supervisor at all.
import { close, launch } from '@sandlock/sys';
import { collect } from '../../../tools/test-support/index.js';
import { parsePolicy, prepareConfinement } from '../../sandlock/src/index.js';
import { PYTHON, Sandbox, SYSTEM_READ } from './helpers.js';

const SCRIPT = `
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

async function alone(argv: string[], netConnect: number[]): Promise<unknown> {
  const confinement = prepareConfinement(parsePolicy({ fsRead: SYSTEM_READ, netConnect }), {
    notify: [],
  });
  let launched: ReturnType<typeof launch>;
  try {
    launched = launch({
      path: argv[0]!,
      argv,
      env: { PATH: '/usr/bin:/bin', LANG: 'C' },
      steps: confinement.steps,
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

/** Each port's outcome, supervised (rules allow all of loopback) and alone. */
export async function differential(
  ports: number[],
  netConnect: number[],
): Promise<{ supervised: unknown; alone: unknown }> {
  const argv = [PYTHON, '-c', SCRIPT, ...ports.map(String)];
  const [supervised, reference] = await Promise.all([
    Sandbox.builder()
      .fsRead(...SYSTEM_READ)
      .netConnect(...netConnect)
      .netAllow('tcp://127.0.0.0/8')
      .build()
      .run(argv, { encoding: 'utf8', timeout: 60_000 }),
    alone(argv, netConnect),
  ]);
  if (supervised.stderr !== '') throw new Error(supervised.stderr);
  return { supervised: JSON.parse(supervised.stdout), alone: reference };
}
