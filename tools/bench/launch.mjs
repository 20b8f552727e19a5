import { spawn } from 'node:child_process';
import { launch } from '@sandlock/sys';
import { interleave, summarize } from './stats.mjs';

function waitExit(child) {
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

async function viaStub(handshake) {
  const launched = launch({
    path: '/bin/true',
    argv: ['/bin/true'],
    env: {},
    stdio: ['ignore', 'ignore', 'ignore'],
    steps: [{ kind: 'noNewPrivs' }],
    handshake,
  });
  const exited = waitExit(launched.child);
  await launched.release();
  await exited;
}

/** /bin/true through the exec stub (with its handshake) against a bare spawn. */
export async function benchLaunch(runs = 200) {
  const cases = {
    'bare spawn': () => waitExit(spawn('/bin/true', [], { stdio: 'ignore' })),
    'exec stub': () => viaStub(false),
    'exec stub, with handshake': () => viaStub(true),
  };
  const result = summarize(await interleave(cases, runs));
  return {
    title: `launch /bin/true, ${runs} runs each, interleaved`,
    result,
    ratios: {
      'exec stub / bare spawn': result['exec stub'].median / result['bare spawn'].median,
      'exec stub with handshake / bare spawn':
        result['exec stub, with handshake'].median / result['bare spawn'].median,
    },
  };
}
