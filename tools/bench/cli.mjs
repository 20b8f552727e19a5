import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { interleave, summarize } from './stats.mjs';

const CLI = fileURLToPath(new URL('../../apps/cli/bin/sandlock.cjs', import.meta.url));
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));

function run(command, args) {
  return () =>
    new Promise((resolve, reject) => {
      const child = spawn(command, args, { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`)),
      );
    });
}

function hasBwrap() {
  return ['/usr/bin/bwrap', '/bin/bwrap'].some((path) => existsSync(path));
}

/** `sandlock run … -- /bin/echo hi` against `node -e 0` (its floor) and bubblewrap. */
export async function benchCli(runs = 40) {
  const cases = {
    'node -e 0': run(process.execPath, ['-e', '0']),
    'sandlock run -- /bin/echo hi': run(process.execPath, [
      CLI,
      'run',
      ...SYSTEM.flatMap((path) => ['-r', path]),
      '--',
      '/bin/echo',
      'hi',
    ]),
  };
  if (hasBwrap()) {
    cases['bwrap --ro-bind … /bin/echo hi'] = run('bwrap', [
      ...SYSTEM.flatMap((path) => ['--ro-bind', path, path]),
      '--',
      '/bin/echo',
      'hi',
    ]);
  }
  const result = summarize(await interleave(cases, runs, 5));
  const sandlock = result['sandlock run -- /bin/echo hi'].median;
  const ratios = { 'sandlock run / node -e 0': sandlock / result['node -e 0'].median };
  if (result['bwrap --ro-bind … /bin/echo hi']) {
    ratios['sandlock run / bwrap'] = sandlock / result['bwrap --ro-bind … /bin/echo hi'].median;
  }
  return { title: `CLI, ${runs} runs each, interleaved`, result, ratios };
}
