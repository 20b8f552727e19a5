import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContainerdLab,
  IMAGE,
  missingForContainerd,
  NAMESPACE,
  type Run,
  SANDLOCK_OCI,
} from './containerd-lab.js';

// `ctr task exec` into a running container: the process joins the container
// (sandlock-oci: forked inside its sandbox by the zygote), with runc as the control.

const missing = missingForContainerd();
if (missing !== null) console.warn(`containerd exec tests skipped: ${missing}`);

const RUNTIMES = [
  ['runc', '/usr/sbin/runc'],
  ['sandlock-oci', SANDLOCK_OCI],
] as const;

/** Only a hang reaches these. */
const DEADLINE_MS = 60_000;

async function until(what: string, test: () => boolean): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${DEADLINE_MS / 1000} s`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

describe.skipIf(missing !== null)('ctr task exec through containerd', () => {
  let lab: ContainerdLab;

  beforeAll(async () => {
    lab = new ContainerdLab();
    const tar = lab.buildImage();
    await lab.start();
    lab.importImage(tar);
  }, 180_000);

  afterAll(() => lab?.stop());

  describe.each(RUNTIMES)('%s', (name, runtime) => {
    const id = (what: string) => `${name}-exec-${what}`;

    /**
     * Starts `sleep 1000` detached (ctr run -d), with `options` before the
     * image; without --config, after writing its host name to /tmp/hostname.
     */
    async function started(container: string, options: readonly string[] = []): Promise<void> {
      const run = lab.ctr([
        'run',
        '-d',
        '--runc-binary',
        runtime,
        ...options,
        ...(options.includes('--config') ? [] : [IMAGE]),
        container,
        ...(options.includes('--config')
          ? []
          : ['sh', '-c', 'hostname > /tmp/hostname; exec sleep 1000']),
      ]);
      expect(run.status, run.stderr).toBe(0);
      await until(`${container} running`, () =>
        new RegExp(`^${container}\\s+\\d+\\s+RUNNING`, 'm').test(lab.ctr(['task', 'ls']).stdout),
      );
    }

    function removed(container: string): void {
      lab.ctr(['task', 'kill', '-s', 'SIGKILL', container]);
      lab.ctr(['task', 'rm', '-f', container]);
      lab.ctr(['container', 'rm', container]);
    }

    function exec(container: string, execId: string, script: string): Run {
      return lab.ctr(['task', 'exec', '--exec-id', execId, container, 'sh', '-c', script]);
    }

    it("sees the container's files, host name and first process in /proc, not the host's; passes the exit code", async () => {
      const container = id('proc');
      await started(container);
      try {
        const run = exec(
          container,
          'look',
          [
            'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; done | grep -c "^sleep 1000 $"',
            `cat /proc/${lab.daemonPid}/cmdline 2>/dev/null && echo sees-containerd`,
            '[ -e /usr/lib ] && echo host || echo image',
            'while [ ! -s /tmp/hostname ]; do sleep 0.1; done',
            '[ "$(hostname)" = "$(cat /tmp/hostname)" ] && echo same-hostname',
            'exit 3',
          ].join('; '),
        );
        expect(run.stdout).toBe('1\nimage\nsame-hostname\n');
        expect(run.status).toBe(3);
        // The container's own ps lists it while it runs.
        const shown = lab.ctr(['task', 'exec', '--exec-id', 'ps', container, 'sleep', '0.5']);
        expect(shown.status, shown.stderr).toBe(0);
      } finally {
        removed(container);
      }
    });

    it('runs with a terminal of its own, of the caller’s size (ctr task exec -t)', async () => {
      const container = id('tty');
      await started(container);
      try {
        // script(1) gives ctr a terminal, sized here; ctr passes the size on
        // once the process has started (a resize), so `stty size` waits for it.
        const line = [
          'stty rows 33 cols 101;',
          'ctr',
          ...lab.ctrArgs([
            'task',
            'exec',
            '-t',
            '--exec-id',
            'tty',
            container,
            'sh',
            '-c',
            `'[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty-ok; tty; until [ -n "$(stty size 2>/dev/null)" ]; do sleep 0.1; done; stty size; echo ctty > /dev/tty; exit 5'`,
          ]),
        ].join(' ');
        const run = lab.run('script', ['-qec', line, '/dev/null'], 120_000);
        // Two terminals translate newlines (ctr's and script's); a NUL ctr
        // writes is echoed as ^@.
        expect(run.stdout.replace(/\r|\^@/g, '')).toMatch(
          /^tty-ok\n\/dev\/pts\/\d+\n33 101\nctty\n$/,
        );
        expect(run.status).toBe(5);
      } finally {
        removed(container);
      }
    });

    it('reaches the exec’d process with ctr task kill --all', async () => {
      const container = id('kill');
      await started(container);
      try {
        const execd = spawn(
          'ctr',
          lab.ctrArgs(['task', 'exec', '--exec-id', 'long', container, 'sleep', '2000']),
          { stdio: 'ignore' },
        );
        const ended = new Promise<number | null>((done) => execd.on('exit', (code) => done(code)));
        await until('the exec’d sleep listed by ctr task ps', () =>
          lab
            .ctr(['task', 'ps', container])
            .stdout.split('\n')
            .some((row) => {
              const pid = Number(row.trim().split(/\s+/)[0]);
              try {
                return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === 'sleep\x002000\x00';
              } catch {
                return false;
              }
            }),
        );
        const killed = lab.ctr(['task', 'kill', '--all', '-s', 'SIGKILL', container]);
        expect(killed.status, killed.stderr).toBe(0);
        expect(await ended).toBe(137);
        await until(`${container} stopped`, () =>
          new RegExp(`^${container}\\s+\\d+\\s+STOPPED`, 'm').test(lab.ctr(['task', 'ls']).stdout),
        );
      } finally {
        removed(container);
      }
    });

    it('ends the exec’d process when the container’s first process ends', async () => {
      const container = id('end');
      const run = lab.ctr([
        'run',
        '-d',
        '--runc-binary',
        runtime,
        IMAGE,
        container,
        'sh',
        '-c',
        'until [ -e /tmp/stop ]; do sleep 0.1; done; exit 3',
      ]);
      expect(run.status, run.stderr).toBe(0);
      await until(`${container} running`, () =>
        new RegExp(`^${container}\\s+\\d+\\s+RUNNING`, 'm').test(lab.ctr(['task', 'ls']).stdout),
      );
      try {
        const execd = spawn(
          'ctr',
          lab.ctrArgs([
            'task',
            'exec',
            '--exec-id',
            'outlive',
            container,
            'sh',
            '-c',
            'touch /tmp/stop; exec sleep 2000',
          ]),
          { stdio: 'ignore' },
        );
        const ended = new Promise<number | null>((done) => execd.on('exit', (code) => done(code)));
        await until(`${container} stopped`, () =>
          new RegExp(`^${container}\\s+\\d+\\s+STOPPED`, 'm').test(lab.ctr(['task', 'ls']).stdout),
        );
        expect(await ended).toBe(137);
      } finally {
        removed(container);
      }
    });

    it('counts the exec’d process with the container’s pids limit', async () => {
      const container = id('pids');
      const spec = JSON.parse(
        readFileSync(lab.specWith(['sleep', '1000'], { uid: 0, gid: 0 }), 'utf8'),
      );
      // sleep and the exec'd shell (sandlock-oci's zygote is not counted): no third.
      spec.linux.resources = { ...spec.linux.resources, pids: { limit: 2 } };
      const path = lab.specWith(['sleep', '1000'], { uid: 0, gid: 0 });
      writeFileSync(path, JSON.stringify(spec));
      await started(container, ['--config', path]);
      try {
        const run = exec(container, 'fork', '/bin/true && echo forked');
        expect(run.stdout).not.toContain('forked');
        expect(run.status).not.toBe(0);
      } finally {
        removed(container);
      }
    });
  });

  it('leaves the whole pids limit to the container: its zygote is not counted', async () => {
    const container = 'sandlock-oci-exec-pids-whole';
    const marker = `/tmp/${container}`;
    const spec = JSON.parse(readFileSync(lab.specWith(['sh'], { uid: 0, gid: 0 }), 'utf8'));
    // The shell and two sleeps: three processes of the container's own.
    spec.process.args = ['sh', '-c', `sleep 1000 & sleep 1000 & echo three > ${marker}; wait`];
    spec.linux.resources = { ...spec.linux.resources, pids: { limit: 3 } };
    const path = lab.specWith(['sh'], { uid: 0, gid: 0 });
    writeFileSync(path, JSON.stringify(spec));
    const written = join(lab.dir, 'unpacked', 'rootfs', marker);
    rmSync(written, { force: true });
    const run = lab.ctr(['run', '-d', '--runc-binary', SANDLOCK_OCI, '--config', path, container]);
    expect(run.status, run.stderr).toBe(0);
    try {
      await until(`${container} forked its three`, () => existsSync(written));
      expect(readFileSync(written, 'utf8')).toBe('three\n');
      expect(lab.ctr(['task', 'ls']).stdout).toMatch(
        new RegExp(`^${container}\\s+\\d+\\s+RUNNING`, 'm'),
      );
      // The control: a fourth, exec'd, is refused.
      const fourth = lab.ctr(['task', 'exec', '--exec-id', 'fourth', container, 'true']);
      expect(fourth.status).not.toBe(0);
      expect(fourth.stderr).toMatch(/EAGAIN/);
    } finally {
      lab.ctr(['task', 'kill', '-s', 'SIGKILL', container]);
      lab.ctr(['task', 'rm', '-f', container]);
      lab.ctr(['container', 'rm', container]);
      rmSync(written, { force: true });
    }
  });

  it('joins as the container’s user, refusing another (no capability is left to switch)', async () => {
    const container = 'sandlock-oci-exec-user';
    const spec = lab.specWith(['sleep', '1000'], { uid: 1000, gid: 1000 });
    const run = lab.ctr(['run', '-d', '--runc-binary', SANDLOCK_OCI, '--config', spec, container]);
    expect(run.status, run.stderr).toBe(0);
    try {
      await until(`${container} running`, () =>
        new RegExp(`^${container}\\s+\\d+\\s+RUNNING`, 'm').test(lab.ctr(['task', 'ls']).stdout),
      );
      const same = lab.ctr([
        'task',
        'exec',
        '--exec-id',
        'same',
        container,
        'sh',
        '-c',
        'id -u; id -g',
      ]);
      expect(same.stdout).toBe('1000\n1000\n');
      const root = lab.ctr(['task', 'exec', '--exec-id', 'root', '--user', '0', container, 'true']);
      expect(root.status).not.toBe(0);
      expect(root.stderr).toMatch(/process\.json: user: 0:0/);
    } finally {
      lab.ctr(['task', 'kill', '-s', 'SIGKILL', container]);
      lab.ctr(['task', 'rm', '-f', container]);
      lab.ctr(['container', 'rm', container]);
    }
  });

  it('fails clearly, starting nothing, when the container’s supervisor cannot be reached', async () => {
    const container = 'sandlock-oci-exec-unreachable';
    const run = lab.ctr([
      'run',
      '-d',
      '--runc-binary',
      SANDLOCK_OCI,
      IMAGE,
      container,
      'sleep',
      '1000',
    ]);
    expect(run.status, run.stderr).toBe(0);
    const socket = `/run/containerd/runc/${NAMESPACE}/${container}/ctl.sock`;
    try {
      await until(`${container} running`, () =>
        new RegExp(`^${container}\\s+\\d+\\s+RUNNING`, 'm').test(lab.ctr(['task', 'ls']).stdout),
      );
      const before = lab.ctr(['task', 'ps', container]).stdout;
      renameSync(socket, `${socket}.away`);
      const failed = lab.ctr(['task', 'exec', '--exec-id', 'lost', container, 'sleep', '1000']);
      expect(failed.status).not.toBe(0);
      expect(failed.stderr).toMatch(/container not running/);
      renameSync(`${socket}.away`, socket);
      expect(lab.ctr(['task', 'ps', container]).stdout).toBe(before);
    } finally {
      lab.ctr(['task', 'kill', '-s', 'SIGKILL', container]);
      lab.ctr(['task', 'rm', '-f', container]);
      lab.ctr(['container', 'rm', container]);
    }
  });
});
