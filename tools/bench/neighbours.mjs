import { existsSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { close, launch } from '@sandlock/sys';
import { parsePolicy, prepareConfinement } from 'sandlock';
import { RANDOM_MODULE, TIME_MODULE } from '../../packages/determinism/dist/index.js';
import { Supervisor } from '../../packages/dispatch/dist/index.js';
import { median } from './stats.mjs';

const PYTHON = '/usr/bin/python3';
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));
const TIMED = { timeStart: Date.UTC(2000, 0, 1) };
const SEEDED = { randomSeed: 1n };
// x86_64 numbers: this benchmark is for the development VM.
const CLOCK_GETTIME = 228;
const GETRANDOM = 318;

/** Raw clock_gettime(CLOCK_REALTIME) as fast as it goes; per 50 ms: start, end, calls. */
const VICTIM = `
import ctypes, time
libc = ctypes.CDLL(None)
libc.syscall.restype = ctypes.c_long
ts = ctypes.create_string_buffer(16)
while True:
    start = time.monotonic(); done = 0
    while True:
        libc.syscall(${CLOCK_GETTIME}, 0, ts); done += 1
        now = time.monotonic()
        if now - start >= 0.05: break
    print(f'{start:.6f} {now:.6f} {done}', flush=True)
`;

/** Four threads on a syscall the modules answer, after `setup` (Python lines). */
const spinning = (setup, call) => `
import ctypes, sys, threading
libc = ctypes.CDLL(None)
libc.syscall.restype = ctypes.c_long
${setup}
print('ready', flush=True)
def spin():
    ts = ctypes.create_string_buffer(16)
    while True: ${call}
for _ in range(4): threading.Thread(target=spin).start()
threading.Event().wait()
`;

const MAPPINGS = `
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
base = libc.mmap(None, 2 * 30000 * 4096, 3, 0x22, -1, 0)
for i in range(30000): libc.mprotect(base + 2 * i * 4096, 4096, 1)
`;

const NEIGHBOURS = {
  'four threads on raw clock_gettime (a busy neighbour)': {
    policy: TIMED,
    argv: [PYTHON, '-c', spinning('', `libc.syscall(${CLOCK_GETTIME}, 0, ts)`)],
  },
  'the same with 60,000 mappings (finding 6)': {
    policy: TIMED,
    argv: [PYTHON, '-c', spinning(MAPPINGS, `libc.syscall(${CLOCK_GETTIME}, 0, ts)`)],
  },
  'four threads on getrandom(32 MiB)': {
    policy: SEEDED,
    argv: [
      PYTHON,
      '-c',
      spinning(
        'big = ctypes.create_string_buffer(32 << 20)',
        `libc.syscall(${GETRANDOM}, big, ctypes.c_size_t(32 << 20), 0)`,
      ),
    ],
  },
  'eight cat /dev/urandom (finding 7)': {
    policy: SEEDED,
    fsWrite: ['/dev/null'],
    argv: [
      '/bin/sh',
      '-c',
      'for i in 1 2 3 4 5 6 7 8; do cat /dev/urandom > /dev/null & done; echo ready; wait',
    ],
  },
};

/**
 * Starts `argv` confined as sandlock confines it (`fsRead` the system), supervised by
 * `supervisor` with the determinism `policy`; returns its pid and stdout.
 */
async function start(supervisor, argv, policy, { cpuCores = null, fsWrite = [] } = {}) {
  const notify = supervisor.notifiedSyscalls({ policy });
  const confinement = prepareConfinement(parsePolicy({ fsRead: SYSTEM, fsWrite, cpuCores }), {
    notify,
  });
  let launched;
  try {
    launched = launch({
      path: argv[0],
      argv,
      env: { PATH: '/usr/bin:/bin', LANG: 'C' },
      steps: confinement.steps,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  } finally {
    for (const fd of confinement.fds) close(fd);
  }
  const report = await launched.ready;
  supervisor.attach(launched.takeListener(), {
    reaperPid: launched.pid,
    programPid: report.pid,
    policy,
    notified: notify,
  });
  await launched.release();
  return { pid: report.pid, stdout: launched.child.stdout, child: launched.child };
}

const processGroup = (pid) =>
  Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[2]);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = () => Number(process.hrtime.bigint()) / 1e9;

function lines(stream, onLine) {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    for (const line of parts) onLine(line);
  });
}

/**
 * A victim sandbox making raw realtime clock_gettime calls (each answered by
 * the time module) as fast as it can, alone and beside each neighbour pinned
 * to CPU 1, both on one dispatch loop (`workers: 1`: the case where one can
 * slow the other; the library spreads sandboxes over a loop per CPU, and a
 * third sandbox shares one); phases of 400 ms alternate, `rounds` of each.
 * Victim: completed calls a second; host: the p99 of this process's
 * event-loop delay (monitorEventLoopDelay, 2 ms resolution).
 */
export async function benchNeighbours(rounds = 5) {
  const supervisor = await Supervisor.start({
    modules: [{ module: RANDOM_MODULE }, { module: TIME_MODULE }],
    workers: 1,
  });
  const result = {};
  const ratios = {};
  try {
    for (const [name, neighbour] of Object.entries(NEIGHBOURS)) {
      const victim = await start(supervisor, [PYTHON, '-c', VICTIM], TIMED);
      const windows = [];
      lines(victim.stdout, (line) => windows.push(line.split(' ').map(Number)));
      const attacker = await start(supervisor, neighbour.argv, neighbour.policy, {
        cpuCores: [1],
        fsWrite: neighbour.fsWrite,
      });
      await new Promise((resolve) =>
        lines(attacker.stdout, (line) => line === 'ready' && resolve()),
      );
      const group = -processGroup(attacker.pid);
      const phases = [];
      try {
        for (let round = 0; round < rounds; round++) {
          for (const beside of [false, true]) {
            process.kill(group, beside ? 'SIGCONT' : 'SIGSTOP');
            await sleep(150);
            const delay = monitorEventLoopDelay({ resolution: 2 });
            delay.enable();
            const from = seconds();
            await sleep(400);
            const to = seconds();
            delay.disable();
            phases.push({ beside, from, to, lag: delay.percentile(99) / 1e6 });
          }
        }
      } finally {
        process.kill(group, 'SIGKILL');
        process.kill(victim.pid, 'SIGKILL');
        await Promise.all(
          [victim.child, attacker.child].map(
            (child) => new Promise((resolve) => child.on('close', resolve)),
          ),
        );
      }
      const rate = ({ from, to }) => {
        const inside = windows.filter(([start, end]) => start >= from && end <= to);
        const time = inside.reduce((sum, [start, end]) => sum + end - start, 0);
        return time > 0 ? inside.reduce((sum, [, , done]) => sum + done, 0) / time : 0;
      };
      const of = (beside) => phases.filter((phase) => phase.beside === beside);
      const alone = of(false).map(rate);
      const besides = of(true).map(rate);
      const row = (values) => ({
        median: median(values),
        min: Math.min(...values),
        p90: Math.max(...values),
        runs: values.length,
      });
      result[`${name}: victim alone`] = row(alone);
      result[`${name}: victim beside`] = row(besides);
      ratios[`${name}: victim beside / alone`] = median(besides) / median(alone);
      ratios[`${name}: host lag p99 alone (ms)`] = median(of(false).map((p) => p.lag));
      ratios[`${name}: host lag p99 beside (ms)`] = median(of(true).map((p) => p.lag));
    }
  } finally {
    await supervisor.close();
  }
  return {
    title: `a victim's notified calls a second (raw realtime clock_gettime) alone and beside a neighbour on its dispatch loop, ${rounds} phases of 400 ms each, interleaved`,
    unit: 'calls/s',
    spread: true,
    result,
    ratios,
  };
}
