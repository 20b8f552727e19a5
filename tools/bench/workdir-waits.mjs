#!/usr/bin/env node
// `tar x` of small files, bare, in a sandbox writing the directory
// (fsWrite) or in a copy-on-write workdir, one sample per process: wall
// time, the supervisor's CPU time and its blocking waits (voluntary context
// switches: a notification, a reply of the reaper, an ADDFD) per file,
// sandbox start and finish included. Waits, unlike wall time, do not
// depend on the machine's load. Build first (`pnpm build`), then
//   node tools/bench/workdir-waits.mjs [files=2000] [bare|fswrite|cow]
// SANDLOCK_DIST=/path/to/packages/sandlock/dist/index.js compares another build.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const { Sandbox } = await import(process.env.SANDLOCK_DIST ?? 'sandlock');
const files = Number(process.argv[2] ?? 2000);
const mode = process.argv[3] ?? 'cow';
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));

const root = mkdtempSync(join(tmpdir(), 'sandlock-bench-waits-'));
try {
  const source = join(root, 'source');
  mkdirSync(source);
  for (let i = 0; i < files; i++) {
    const dir = join(source, `d${i % 100}`);
    if (i < 100) mkdirSync(dir);
    writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`);
  }
  const tarball = join(root, 'files.tar');
  execFileSync('tar', ['cf', tarball, '-C', source, '.']);
  const dir = join(root, 'x');
  mkdirSync(dir);
  const start = performance.now();
  const cpu = process.cpuUsage();
  const usage = process.resourceUsage();
  if (mode === 'bare') {
    spawnSync('tar', ['xf', tarball], { cwd: dir });
  } else {
    const builder = Sandbox.builder()
      .fsRead(...SYSTEM, root)
      .cwd(dir);
    if (mode === 'cow') builder.workdir(dir).fsStorage(join(root, 'store')).onExit('abort');
    else builder.fsWrite(dir);
    const result = await builder.build().run(['tar', 'xf', tarball]);
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
  }
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpu);
  const waits = process.resourceUsage().voluntaryContextSwitches - usage.voluntaryContextSwitches;
  console.log(
    `${mode}, ${files} files: ${wall.toFixed(0)} ms, supervisor CPU ${((used.user + used.system) / files).toFixed(0)} µs and ${(waits / files).toFixed(2)} waits per file; load ${loadavg()[0].toFixed(1)}`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
