import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_DIR,
  ContainerdLab,
  IMAGE,
  missingForContainerd,
  NAMESPACE,
  SANDLOCK_OCI,
} from './containerd-lab.js';

const missing = missingForContainerd();
if (missing !== null) console.warn(`containerd tests skipped: ${missing}`);

/** runc is the control: every case must hold for it as it does for sandlock-oci. */
const RUNTIMES = [
  ['runc', '/usr/sbin/runc'],
  ['sandlock-oci', SANDLOCK_OCI],
] as const;

describe.skipIf(missing !== null)('ctr run through containerd', () => {
  let lab: ContainerdLab;

  beforeAll(async () => {
    lab = new ContainerdLab();
    const tar = lab.buildImage();
    await lab.start();
    lab.importImage(tar);
  }, 180_000);

  afterAll(() => lab?.stop());

  describe.each(RUNTIMES)('%s', (name, runtime) => {
    const id = (what: string) => `${name}-${what}`;
    const stateDir = (container: string) => `/run/containerd/runc/${NAMESPACE}/${container}`;

    it('passes the exit status and stdout through, and leaves no state behind', () => {
      const run = lab.ctrRun(runtime, id('exit'), [], ['sh', '-c', 'echo out-$((6 * 7)); exit 7']);
      expect(run.stdout).toBe('out-42\n');
      expect(run.status).toBe(7);
      expect(existsSync(stateDir(id('exit')))).toBe(false);
    });

    it("sees the image's root as /, not the host's", () => {
      const run = lab.ctrRun(
        runtime,
        id('root'),
        [],
        [
          'sh',
          '-c',
          '[ -e /usr/lib ] && echo host || echo image; [ -x /bin/busybox ] && echo busybox',
        ],
      );
      expect(run.stdout).toBe('image\nbusybox\n');
      expect(run.status).toBe(0);
    });

    it('mounts beneath directories the image does not have, as kubelet mounts its secrets', () => {
      const secrets = mkdtempSync(join(tmpdir(), 'sandlock-oci-secrets-'));
      try {
        writeFileSync(join(secrets, 'token'), 'token-42\n');
        writeFileSync(join(secrets, 'single'), 'single-file\n');
        const run = lab.ctrRun(
          runtime,
          id('deep-mount'),
          [
            '--mount',
            `type=bind,src=${secrets},dst=/var/run/secrets/kubernetes.io/serviceaccount,options=rbind:ro`,
            '--mount',
            `type=bind,src=${join(secrets, 'single')},dst=/etc/deep/er/single,options=rbind:ro`,
          ],
          [
            'sh',
            '-c',
            'cat /var/run/secrets/kubernetes.io/serviceaccount/token /etc/deep/er/single; cd /var/run/secrets && pwd',
          ],
        );
        expect(run.stderr).toBe('');
        expect(run.stdout).toBe('token-42\nsingle-file\n/var/run/secrets\n');
        expect(run.status).toBe(0);
      } finally {
        rmSync(secrets, { recursive: true, force: true });
      }
    });

    it("shows only the container's own processes in /proc", () => {
      // The shell's own glob: no program runs but the shell.
      const run = lab.ctrRun(runtime, id('proc'), [], ['sh', '-c', 'set -- /proc/[0-9]*; echo $#']);
      expect(run.status).toBe(0);
      const count = Number(run.stdout.trim());
      expect(count).toBeGreaterThan(0);
      expect(count).toBeLessThan(8);
    });

    it('runs with a terminal (ctr run -t)', () => {
      // isatty(3) on the three: the pty the console socket received is the container's terminal.
      const run = lab.ctrRunTerminal(
        runtime,
        id('tty'),
        '[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty-ok; exit 6',
      );
      expect(run.stdout).toContain('tty-ok');
      expect(run.status).toBe(6);
    });

    it('ends a container that ctr task kill kills', async () => {
      const container = id('kill');
      const run = spawn(
        'ctr',
        lab.ctrArgs(['run', '--rm', '--runc-binary', runtime, IMAGE, container, 'sleep', '1000']),
        { stdio: 'ignore' },
      );
      const ended = new Promise<number | null>((done) => run.on('exit', (code) => done(code)));
      const deadline = Date.now() + 60_000;
      while (!/\bRUNNING\b/.test(lab.ctr(['task', 'ls']).stdout)) {
        if (Date.now() > deadline) throw new Error('the task did not start in 60 s');
        await new Promise((done) => setTimeout(done, 200));
      }
      const killed = lab.ctr(['task', 'kill', '-s', 'SIGKILL', container]);
      expect(killed.status, killed.stderr).toBe(0);
      expect(await ended).toBe(137);
      expect(existsSync(stateDir(container))).toBe(false);
    });

    it("applies the container's seccomp profile: containerd's default, and one refusing mkdir", () => {
      const defaults = lab.ctrRun(
        runtime,
        id('seccomp-default'),
        ['--seccomp'],
        ['sh', '-c', 'echo fine'],
      );
      expect(defaults.stdout).toBe('fine\n');
      expect(defaults.status).toBe(0);
      const refusing = lab.ctrRun(
        runtime,
        id('seccomp-mkdir'),
        ['--seccomp', '--seccomp-profile', lab.mkdirProfile()],
        ['sh', '-c', 'mkdir /tmp/made 2>/dev/null || echo refused'],
      );
      expect(refusing.stdout).toBe('refused\n');
      expect(refusing.status).toBe(0);
    });

    it('runs the workload as process.user: its ids, groups and umask, no capability, its own files and their metadata', () => {
      const spec = lab.specWith(
        [
          'sh',
          '-c',
          'id -u; id -g; id -G; umask; grep CapEff /proc/self/status; ' +
            'echo x > /dev/shm/f && stat -c %u:%g:%a /dev/shm/f; touch /made 2>/dev/null || echo no-root; ' +
            // Metadata of its own file, changed as the user (fs-meta).
            'chmod 600 /dev/shm/f && touch -d @1000 /dev/shm/f && stat -c %a:%Y /dev/shm/f',
        ],
        { uid: 1000, gid: 1000, additionalGids: [27], umask: 0o027 },
      );
      const run = lab.ctr(['run', '--rm', '--config', spec, '--runc-binary', runtime, id('user')]);
      expect(run.stdout.split('\n')).toEqual([
        '1000',
        '1000',
        expect.stringMatching(/^1000 27$|^27 1000$/),
        '0027',
        'CapEff:\t0000000000000000',
        '1000:1000:640',
        'no-root',
        '600:1000',
        '',
      ]);
      expect(run.status).toBe(0);
    });

    it('kills a container over its memory limit (--memory-limit)', () => {
      const run = lab.ctrRun(
        runtime,
        id('memory'),
        ['--memory-limit', String(64 << 20)],
        // The shell's own string doubles until it holds 512 MiB: no program runs but the shell.
        [
          'sh',
          '-c',
          'echo start; x=a; i=0; while [ $i -lt 29 ]; do x="$x$x"; i=$((i + 1)); done; echo survived',
        ],
      );
      expect(run.stdout).toContain('start');
      expect(run.stdout).not.toContain('survived');
      expect(run.status).toBe(137);
    });
  });

  describe('sandlock run inside a runc container with containerd’s default profile (RuntimeDefault)', () => {
    const cliMissing = existsSync(`${CLI_DIR}/dist/main.cjs`)
      ? null
      : `${CLI_DIR}/dist/main.cjs is missing: run 'pnpm build' first`;
    if (cliMissing !== null) console.warn(`sandlock inside a container skipped: ${cliMissing}`);
    const inRunc = (id: string, args: readonly string[]) =>
      lab.ctr([
        'run',
        '--rm',
        '--rootfs',
        '--seccomp',
        '--runc-binary',
        '/usr/sbin/runc',
        lab.nodeRootfs(),
        id,
        process.execPath,
        '/opt/sandlock/bin/sandlock.cjs',
        ...args,
      ]);
    const system = ['-r', '/bin', '-r', '/usr', '-r', '/lib', '-r', '/lib64'];

    it.skipIf(cliMissing !== null)(
      'check names what the profile refuses; a supervised sandbox runs; maxMemory is refused as check says',
      () => {
        const check = inRunc('in-runc-check', ['check']);
        expect(check.stdout).toMatch(/^pidfd_getfd\s+missing .*EPERM.*maxMemory/m);
        expect(check.stdout).toContain('Sandlock can run here.');
        expect(check.status).toBe(0);
        const run = inRunc('in-runc-run', [
          'run',
          ...system,
          '-r',
          '/proc',
          '--hostname',
          'boxed',
          '--',
          '/bin/sh',
          '-c',
          'uname -n; head -1 /proc/self/status; ls /proc | grep -x -e 1 -e self',
        ]);
        expect(run.stdout).toBe('boxed\nName:\thead\nself\n');
        expect(run.status).toBe(0);
        const memory = inRunc('in-runc-memory', [
          'run',
          ...system,
          '-m',
          '64M',
          '--',
          '/bin/echo',
          'hi',
        ]);
        expect(memory.stderr).toContain('refuses pidfd_getfd');
        expect(memory.stderr).toContain('which maxMemory needs');
        expect(memory.status).not.toBe(0);
      },
    );
  });

  it('refuses what it cannot honour, naming the field', () => {
    const run = lab.ctrRun(
      SANDLOCK_OCI,
      'sandlock-oci-device',
      ['--device', '/dev/zero'],
      ['true'],
    );
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(
      'config.json: linux.devices: creating device nodes is not supported',
    );
  });

  it('takes policy fields from dev.sandlock.* annotations', () => {
    const run = lab.ctrRun(
      SANDLOCK_OCI,
      'sandlock-oci-annotation',
      ['--annotation', 'dev.sandlock.numCpus=1'],
      ['nproc'],
    );
    expect(run.stdout).toBe('1\n');
    expect(run.status).toBe(0);
  });
});
