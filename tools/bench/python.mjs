import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Sandbox } from 'sandlock';
import { interleave, summarize } from './stats.mjs';

const PYTHON = '/usr/bin/python3';
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));

function bare() {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', 'pass'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

function sandboxed(sandbox) {
  return async () => {
    const result = await sandbox.run([PYTHON, '-c', 'pass']);
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
  };
}

/** `python3 -c pass` bare, sandboxed, and sandboxed under the supervisor (a process limit). */
export async function benchPython(runs = 40) {
  const plain = Sandbox.builder()
    .fsRead(...SYSTEM)
    .build();
  const supervised = Sandbox.builder()
    .fsRead(...SYSTEM)
    .maxProcesses(64)
    .build();
  const procReadable = Sandbox.builder()
    .fsRead(...SYSTEM, '/proc')
    .build();
  const deterministic = Sandbox.builder()
    .fsRead(...SYSTEM)
    .randomSeed(1)
    .timeStart('2000-01-01T00:00:00Z')
    .build();
  const cases = {
    'python3 -c pass': bare,
    sandboxed: sandboxed(plain),
    'sandboxed, supervised (maxProcesses)': sandboxed(supervised),
    'sandboxed, /proc readable (every open checked)': sandboxed(procReadable),
    'sandboxed, randomSeed and timeStart (vDSO patched)': sandboxed(deterministic),
  };
  const result = summarize(await interleave(cases, runs, 5));
  const base = result['python3 -c pass'].median;
  return {
    title: `python3 -c pass, ${runs} runs each, interleaved`,
    result,
    ratios: {
      'sandboxed / bare': result.sandboxed.median / base,
      'supervised / bare': result['sandboxed, supervised (maxProcesses)'].median / base,
      '/proc readable / bare':
        result['sandboxed, /proc readable (every open checked)'].median / base,
      'randomSeed and timeStart / bare':
        result['sandboxed, randomSeed and timeStart (vDSO patched)'].median / base,
    },
  };
}
