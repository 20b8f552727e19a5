import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { interleave, summarize } from './stats.mjs';

const SANDLOCK_OCI = fileURLToPath(new URL('../../apps/oci/bin/sandlock-oci.cjs', import.meta.url));
const IMAGE = 'docker.io/local/bb:latest';
const NAMESPACE = `sandlock-oci-bench-${process.pid}`;

function must(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

function which(command) {
  return (
    spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim() || null
  );
}

/** A busybox-static image built offline with umoci (as apps/oci/test/containerd-lab.ts does). */
function buildImage(dir) {
  const layout = join(dir, 'img');
  const bundle = join(dir, 'unpacked');
  must('umoci', ['init', '--layout', layout]);
  must('umoci', ['new', '--image', `${layout}:latest`]);
  must('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
  const bin = join(bundle, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  for (const name of ['tmp', 'proc', 'dev', 'etc', 'sys', 'run']) {
    mkdirSync(join(bundle, 'rootfs', name), { recursive: true });
  }
  writeFileSync(join(bin, 'busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  for (const applet of ['sh', 'true']) linkSync(join(bin, 'busybox'), join(bin, applet));
  must('umoci', ['repack', '--image', `${layout}:latest`, bundle]);
  must('umoci', ['config', '--image', `${layout}:latest`, '--config.env', 'PATH=/bin']);
  const tar = join(dir, 'img.tar');
  must('tar', ['-C', layout, '-cf', tar, '.']);
  return tar;
}

async function startContainerd(dir) {
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${socket}"\n[ttrpc]\n  address = "${socket}.ttrpc"\n[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n`,
  );
  const daemon = spawn('containerd', ['--config', config], { stdio: 'ignore', detached: true });
  const deadline = Date.now() + 60_000;
  while (spawnSync('ctr', ['--address', socket, 'version']).status !== 0) {
    if (Date.now() > deadline) throw new Error('containerd did not answer in 60 s');
    await new Promise((done) => setTimeout(done, 200));
  }
  return { socket, daemon };
}

/** Detaches every mount below `dir` (the snapshots and rootfs a failed run left), deepest first. */
function unmountUnder(dir) {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point) => point?.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of points) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
}

/**
 * Container start to exit of /bin/true through `ctr run --rm`, with runc,
 * sandlock-oci and runsc (gVisor) as the shim's runc binary.
 */
export async function benchOci(runs = 15) {
  for (const tool of ['containerd', 'ctr', 'runc', 'umoci']) {
    if (!which(tool)) throw new Error(`${tool} is missing (apt-get install containerd runc umoci)`);
  }
  if (!existsSync(SANDLOCK_OCI)) throw new Error('run pnpm build first');
  const dir = mkdtempSync(join(tmpdir(), 'sandlock-oci-bench-'));
  const { socket, daemon } = await startContainerd(dir);
  try {
    must('ctr', [
      '--address',
      socket,
      '-n',
      NAMESPACE,
      'images',
      'import',
      '--base-name',
      'docker.io/local/bb',
      buildImage(dir),
    ]);
    let serial = 0;
    const ctrRun = (binary) => () =>
      new Promise((resolve, reject) => {
        const child = spawn(
          'ctr',
          [
            '--address',
            socket,
            '-n',
            NAMESPACE,
            'run',
            '--rm',
            '--runc-binary',
            binary,
            IMAGE,
            `bench-${process.pid}-${serial++}`,
            '/bin/true',
          ],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let stderr = '';
        child.stderr.on('data', (chunk) => {
          stderr += chunk;
        });
        child.on('error', reject);
        child.on('exit', (code) =>
          code === 0
            ? resolve()
            : reject(new Error(`ctr run with ${binary} exited ${code}: ${stderr.trim()}`)),
        );
      });
    const cases = { runc: ctrRun(which('runc')), 'sandlock-oci': ctrRun(SANDLOCK_OCI) };
    const notes = [];
    // runsc refuses to run in the host's network namespace, which a spec with
    // no network namespace path means to it: the wrapper asks for no network.
    let runsc = null;
    if (which('runsc')) {
      runsc = join(dir, 'runsc-no-network');
      writeFileSync(runsc, `#!/bin/sh\nexec ${which('runsc')} --network=none "$@"\n`, {
        mode: 0o755,
      });
    }
    if (runsc) {
      try {
        await ctrRun(runsc)();
        cases.runsc = ctrRun(runsc);
      } catch (error) {
        notes.push(`runsc left out: ${error.message}`);
      }
    } else {
      notes.push('runsc left out: not installed (apt-get install runsc)');
    }
    const result = summarize(await interleave(cases, runs, 2));
    const sandlock = result['sandlock-oci'].median;
    const ratios = { 'sandlock-oci / runc': sandlock / result.runc.median };
    if (result.runsc) ratios['sandlock-oci / runsc'] = sandlock / result.runsc.median;
    for (const note of notes) console.error(note);
    return { title: `ctr run --rm of /bin/true, ${runs} runs each, interleaved`, result, ratios };
  } finally {
    daemon.kill('SIGTERM');
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
    rmSync(`/run/containerd/runc/${NAMESPACE}`, { recursive: true, force: true });
  }
}
