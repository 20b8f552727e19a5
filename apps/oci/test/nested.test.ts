// `sandlock run` and `sandlock check` inside a container sandlock-oci runs:
// the inner sandbox is taken on by the container's supervisor, inside the
// container's root, and its policy only narrows the container's.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_DIR, ContainerdLab, missingForContainerd, SANDLOCK_OCI } from './containerd-lab.js';

const missing =
  missingForContainerd() ??
  (existsSync(`${CLI_DIR}/dist/main.cjs`)
    ? null
    : `${CLI_DIR}/dist/main.cjs is missing: run 'pnpm build' first`);
if (missing !== null) console.warn(`sandlock inside a sandlock-oci container skipped: ${missing}`);

describe.skipIf(missing !== null)('sandlock inside a sandlock-oci container', () => {
  let lab: ContainerdLab;

  beforeAll(async () => {
    lab = new ContainerdLab();
    await lab.start();
  }, 180_000);

  afterAll(() => lab?.stop());

  const inContainer = (id: string, args: readonly string[]) =>
    lab.ctr(
      [
        'run',
        '--rm',
        '--rootfs',
        '--runc-binary',
        SANDLOCK_OCI,
        lab.nodeRootfs(),
        id,
        process.execPath,
        '/opt/sandlock/bin/sandlock.cjs',
        ...args,
      ],
      240_000,
    );

  it('check says a sandbox started there is served by the container’s supervisor', () => {
    const check = inContainer('nested-check', ['check']);
    expect(check.stdout).toMatch(
      /^seccomp user notification\s+OK .*taken on by the supervisor around it, SANDLOCK_SUPERVISOR=\//m,
    );
    expect(check.stdout).not.toContain('MISSING');
    expect(check.stdout).toContain('Sandlock can run here.');
    expect(check.status).toBe(0);
  }, 300_000);

  it('runs a sandbox whose narrower policy holds: a write it grants lands, one it does not fails', () => {
    const run = inContainer('nested-run', [
      'run',
      ...['-r', '/bin', '-r', '/usr', '-r', '/lib', '-r', '/lib64', '-w', '/tmp'],
      '--',
      '/bin/sh',
      '-c',
      [
        'echo granted > /tmp/inner && head -1 /tmp/inner',
        '(echo refused > /etc/inner) 2>/dev/null || echo etc-refused',
        'mkdir /opt/inner 2>/dev/null || echo mkdir-refused',
        '[ -e /etc/inner ] || echo etc-untouched',
        'head -c 0 /opt/sandlock/package.json 2>/dev/null || echo read-refused',
      ].join('; '),
    ]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('granted\netc-refused\nmkdir-refused\netc-untouched\nread-refused\n');
    expect(run.status).toBe(0);
  }, 300_000);
});
