// A sandbox with a copy-on-write workdir, for tests that need the
// supervisor to be another user (run under setpriv): the built sandlock
// package (plain Node: no compile of the sources as that user).
//   workdir-run.mjs '{"workdir", "storage", "maxDisk"?, "fsWrite"?, "onExit"?, "end"?, "argv"}'
// prints one JSON line: how maxDisk was enforced, the status, the output and
// the change list (or the error the run threw). `end`: run()'s workdirEnd
// ('dry-run', 'defer'); "defer-commit" / "defer-abort" decide after the run.
import { existsSync } from 'node:fs';

const entry = new URL('../../../sandlock/dist/index.js', import.meta.url);
if (!existsSync(entry)) throw new Error(`${entry.pathname} is missing: run 'pnpm build' first`);
const { Sandbox } = await import(entry.href);

const run = JSON.parse(process.argv[2]);
const system = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));
const builder = Sandbox.builder()
  .fsRead(...system, '/dev/null', '/proc')
  .workdir(run.workdir)
  .fsStorage(run.storage)
  .onExit(run.onExit ?? 'commit')
  .onError('abort')
  .cwd(run.workdir);
if (run.maxDisk !== undefined) builder.maxDisk(run.maxDisk);
if (run.fsWrite !== undefined) builder.fsWrite(...run.fsWrite);
const deferred = run.end?.startsWith('defer-') === true;
let result;
try {
  result = await builder.build().run(run.argv, {
    encoding: 'utf8',
    env: { PATH: '/usr/bin:/bin', LANG: 'C' },
    workdirEnd: deferred ? 'defer' : (run.end ?? 'policy'),
  });
  if (run.end === 'defer-commit') await result.workdir.commit();
  if (run.end === 'defer-abort') result.workdir.abort();
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error.message })}\n`);
  process.exit(0);
}
process.stdout.write(
  `${JSON.stringify({
    diskBound: result.workdir?.diskBound ?? null,
    done: result.workdir?.done ?? null,
    changes: result.workdir?.changes ?? null,
    exitCode: result.exitCode,
    killedBy: result.killedBy?.message ?? null,
    stdout: result.stdout,
    stderr: result.stderr,
    uid: process.getuid?.(),
  })}\n`,
);
