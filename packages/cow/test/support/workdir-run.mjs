// A sandbox with a copy-on-write workdir, for tests that need the
// supervisor to be another user (run under setpriv): the built sandlock
// package (plain Node: no compile of the sources as that user).
//   workdir-run.mjs WORKDIR STORE MAXDISK SCRIPT
// prints one JSON line: how maxDisk was enforced, the status and the output.
import { existsSync } from 'node:fs';

const entry = new URL('../../../sandlock/dist/index.js', import.meta.url);
if (!existsSync(entry)) throw new Error(`${entry.pathname} is missing: run 'pnpm build' first`);
const { Sandbox } = await import(entry.href);

const [workdir, storage, maxDisk, script] = process.argv.slice(2);
const system = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));
const result = await Sandbox.builder()
  .fsRead(...system, '/dev/null', '/proc')
  .workdir(workdir)
  .fsStorage(storage)
  .maxDisk(Number(maxDisk))
  .onExit('commit')
  .onError('abort')
  .cwd(workdir)
  .build()
  .run(['/bin/sh', '-c', script], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LANG: 'C' } });
process.stdout.write(
  `${JSON.stringify({
    diskBound: result.workdir?.diskBound ?? null,
    done: result.workdir?.done ?? null,
    exitCode: result.exitCode,
    killedBy: result.killedBy?.message ?? null,
    stdout: result.stdout,
    stderr: result.stderr,
    uid: process.getuid?.(),
  })}\n`,
);
