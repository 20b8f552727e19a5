// The cost of an open under the proc-pids module, against no supervision and
// a module that answers every open `continue` (the README's table). Run:
//   node --import ./packages/dispatch/src/dev/register.mjs packages/procfs/bench/open-cost.ts
import { Supervisor } from '@sandlock/dispatch';
import { PROC_PIDS_MODULE } from '../src/index.js';
import { PYTHON, run, SYSTEM_READ } from '../test/helpers.js';

const SCRIPT = `
import os, time, statistics, subprocess
def attempt(path):
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError:
        pass
def bench(path, n=5000):
    runs = []
    for r in range(5):
        t = time.perf_counter()
        for i in range(n):
            attempt(path)
        runs.append((time.perf_counter() - t) / n * 1e6)
    return round(statistics.median(runs), 1)
child = subprocess.Popen(['/bin/sleep', '60'])
os.chdir('/usr')
for name, path in [('abs', '/etc/passwd'), ('rel', 'lib'), ('symlinked', '/lib/x86_64-linux-gnu/libc.so.6'),
                   ('missing', '/usr/lib/nonexistent.so'), ('self', '/proc/self/stat'),
                   ('pid', f'/proc/{os.getpid()}/status'), ('sibling', f'/proc/{child.pid}/status'),
                   ('hidden', '/proc/1/status'), ('sys', '/sys/devices/system/cpu/online')]:
    print(name, bench(path), end='  ')
print()
child.kill()
`;

const supervisor = await Supervisor.start({
  modules: [{ module: new URL('./noop-module.ts', import.meta.url) }, { module: PROC_PIDS_MODULE }],
});
const fsRead = [...SYSTEM_READ, '/proc', '/sys', '/dev/null'];
for (const [name, policy] of [
  ['bare', {}],
  ['noop', { noop: true }],
  ['proc-pids', { fsRead }],
] as const) {
  const result = await run(supervisor, [PYTHON, '-c', SCRIPT], { policy: policy as never, fsRead });
  console.log(name.padEnd(10), result.stdout.trim(), result.stderr);
}
await supervisor.close();
