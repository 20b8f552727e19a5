import { spawnSync } from 'node:child_process';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missingForContainerd, SANDLOCK_OCI } from './containerd-lab.js';

// A --root as long as a CRI handler's own (containerd appends the namespace):
// ROOT/ID/ctl.sock is longer than sockaddr_un's sun_path (unix(7)).
const missing = missingForContainerd();
if (missing !== null) console.warn(`control socket tests skipped: ${missing}`);

const dir = mkdtempSync(join(tmpdir(), 'sandlock-oci-socket-'));
const root = join(dir, 'a-runtime-root-as-long-as-a-cri-handlers', 'k8s.io');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runtime(...args: string[]) {
  const io = args[0] === 'create' ? 'ignore' : 'pipe';
  const result = spawnSync(
    process.execPath,
    [SANDLOCK_OCI, '--root', root, '--log', join(dir, 'log.json'), '--log-format', 'json', ...args],
    { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', io, io] },
  );
  return { status: result.status, stdout: result.stdout };
}

function sleeper(): string {
  const path = mkdtempSync(join(dir, 'bundle-'));
  const bin = join(path, 'rootfs', 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'busybox'), readFileSync('/bin/busybox'), { mode: 0o755 });
  linkSync(join(bin, 'busybox'), join(bin, 'sleep'));
  writeFileSync(
    join(path, 'config.json'),
    JSON.stringify({
      ociVersion: '1.0.2',
      root: { path: 'rootfs' },
      process: { args: ['sleep', '1000'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } },
    }),
  );
  return path;
}

const status = (id: string) => JSON.parse(runtime('state', id).stdout).status as string;

describe.skipIf(missing !== null)('the control socket under a long --root', () => {
  it('reaches each container on its own, and delete leaves nothing in the root', async () => {
    // 64 characters, as containerd's IDs; the two share all but the last four.
    const ids = ['one', 'two'].map((end) => `${'c'.repeat(60)}-${end}`);
    expect(Buffer.byteLength(join(root, ids[0]!, 'ctl.sock'))).toBeGreaterThan(107);
    for (const id of ids) {
      expect(runtime('create', '--bundle', sleeper(), id).status).toBe(0);
      expect(runtime('start', id).status).toBe(0);
    }
    expect(runtime('kill', ids[0]!, '9').status).toBe(0);
    const deadline = Date.now() + 60_000;
    while (status(ids[0]!) !== 'stopped') {
      if (Date.now() > deadline) throw new Error('the killed container did not stop in 60 s');
      await new Promise((done) => setTimeout(done, 100));
    }
    expect(status(ids[1]!)).toBe('running');
    expect(runtime('delete', ids[0]!).status).toBe(0);
    expect(runtime('delete', '--force', ids[1]!).status).toBe(0);
    expect(readdirSync(root)).toEqual([]);
  });
});
