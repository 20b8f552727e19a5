import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Sandbox } from 'sandlock';
import { interleave, summarize } from './stats.mjs';

const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));

function bareEcho() {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/echo', ['hi'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

/** `sandbox.run(['/bin/echo', 'hi'])` in a warm process against a bare spawn of the same. */
export async function benchLibrary(runs = 100) {
  const sandbox = Sandbox.builder()
    .fsRead(...SYSTEM)
    .build();
  const cases = {
    'bare spawn /bin/echo hi': bareEcho,
    "sandbox.run(['/bin/echo', 'hi'])": async () => {
      const result = await sandbox.run(['/bin/echo', 'hi']);
      if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}`);
    },
  };
  const result = summarize(await interleave(cases, runs));
  const bare = result['bare spawn /bin/echo hi'].median;
  const sandboxed = result["sandbox.run(['/bin/echo', 'hi'])"].median;
  return {
    title: `library run in a warm process, ${runs} runs each, interleaved`,
    result,
    ratios: {
      'sandbox.run / bare spawn': sandboxed / bare,
      'sandbox.run − bare spawn (ms)': sandboxed - bare,
    },
  };
}
