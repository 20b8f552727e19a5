// Escapes tried from inside a container run through containerd (ctr run):
// the host's files through `..`, symlinks and /proc, the shim's and
// containerd's processes, another container's files and processes, a
// read-only bind mount, the image's lower layers. Each must fail under
// sandlock-oci, and under runc, the control. The attempts are shell builtins
// (redirections, read, kill, globs) where they can be, so that an attempt
// that fails cannot be a program that did not start; each group has a
// control that must succeed.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ContainerdLab,
  IMAGE,
  missingForContainerd,
  NAMESPACE,
  SANDLOCK_OCI,
} from './containerd-lab.js';

const missing = missingForContainerd();
if (missing !== null) console.warn(`escape tests skipped: ${missing}`);

const RUNTIMES = [
  ['runc', '/usr/sbin/runc'],
  ['sandlock-oci', SANDLOCK_OCI],
] as const;

/** Only catches hangs. */
const HANG = 120_000;

/** Reads the first line of $2 with the shell's own redirection: "$1: read LINE" or "$1: none". */
const READ =
  'r() { if read -r line < "$2"; then echo "$1: read $line"; else echo "$1: none"; fi 2>/dev/null; }';

/** The lines of a script's output, as a map from each attempt's name to its result. */
function results(stdout: string): Map<string, string> {
  return new Map(
    stdout
      .split('\n')
      .filter((line) => line.includes(': '))
      .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]),
  );
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(' ')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** The shim serving container `id` (containerd-shim-runc-v2 ... -id ID ...). */
function shimOf(id: string): number {
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('containerd-shim-runc-v2') && argv.includes(id)) return Number(pid);
    } catch {
      // It ended while the list was read.
    }
  }
  throw new Error(`no shim for ${id}`);
}

describe.skipIf(missing !== null)('escapes from a container', () => {
  let lab: ContainerdLab;
  /** A file on the host, outside every container's root. */
  let secret: string;
  /** A host directory bound read-only into the containers. */
  let readOnly: string;

  beforeAll(async () => {
    lab = new ContainerdLab();
    secret = join(lab.dir, 'host-secret');
    writeFileSync(secret, 'host-secret\n');
    readOnly = join(lab.dir, 'read-only');
    mkdirSync(readOnly);
    writeFileSync(join(readOnly, 'seed'), 'seed\n');
    chmodSync(join(readOnly, 'seed'), 0o644);
    const tar = lab.buildImage((rootfs) => {
      mkdirSync(join(rootfs, 'tmp', 'deep'), { recursive: true });
      writeFileSync(join(rootfs, 'etc', 'inside'), 'inside\n');
      // Symlinks in the image pointing out of it: relative, absolute, through /proc.
      symlinkSync('../../../../../../../../..', join(rootfs, 'up'));
      symlinkSync('../../../../../../../..', join(rootfs, 'tmp', 'deep', 'up'));
      symlinkSync(secret, join(rootfs, 'abs'));
      symlinkSync('/proc/1/root', join(rootfs, 'procroot'));
    });
    await lab.start();
    lab.importImage(tar);
  }, 180_000);

  afterAll(() => lab?.stop());

  describe.each(RUNTIMES)('%s', (name, runtime) => {
    const id = (what: string) => `${name}-escape-${what}`;
    const run = (what: string, script: string, options: readonly string[] = []) =>
      lab.ctrRun(runtime, id(what), options, ['sh', '-c', `${READ}\n${script}`]);

    it("reaches no host file through '..', symlinks or /proc", () => {
      const out = run(
        'paths',
        [
          'r control /etc/inside',
          `r dotdot /../../../../..${secret}`,
          `r dotdot-proc /proc/../../../..${secret}`,
          `r absolute ${secret}`,
          `cd /tmp; r relative ../../../../../../..${secret}`,
          `r image-relative /up${secret}`,
          `r image-deep /tmp/deep/up${secret}`,
          'r image-absolute /abs',
          `r image-procroot /procroot${secret}`,
          `r proc1-root /proc/1/root${secret}`,
          `r self-root /proc/self/root${secret}`,
          `r self-cwd /proc/self/cwd/../../../../..${secret}`,
          // Symlinks made at run time (ln: a program; its control must read).
          'ln -s /etc/inside /tmp/made-control; r made-control /tmp/made-control',
          `ln -s ../../../../../../.. /tmp/made-up; r made-relative /tmp/made-up${secret}`,
          `ln -s ${secret} /tmp/made-abs; r made-absolute /tmp/made-abs`,
          `ln ${secret} /tmp/hard 2>/dev/null; r made-hard /tmp/hard`,
        ].join('\n'),
      );
      const seen = results(out.stdout);
      expect(seen.get('control'), out.stderr).toBe('read inside');
      expect(seen.get('made-control'), out.stderr).toBe('read inside');
      for (const attempt of [
        'dotdot',
        'dotdot-proc',
        'absolute',
        'relative',
        'image-relative',
        'image-deep',
        'image-absolute',
        'image-procroot',
        'proc1-root',
        'self-root',
        'self-cwd',
        'made-relative',
        'made-absolute',
        'made-hard',
      ]) {
        expect(`${attempt}: ${seen.get(attempt)}`).toBe(`${attempt}: none`);
      }
      expect(out.stdout).not.toContain('host-secret');
      expect(out.status).toBe(0);
    });

    it(
      "reaches neither the shims, containerd, nor another container's files and processes",
      async () => {
        // The victim: another container of the same runtime, its files and processes.
        const victim = id('victim');
        const started = spawn(
          'ctr',
          lab.ctrArgs(['run', '--rm', '--runc-binary', runtime, IMAGE, victim, 'sleep', '1000']),
          { stdio: 'ignore' },
        );
        const ended = new Promise((done) => started.on('exit', done));
        try {
          const deadline = Date.now() + HANG;
          let task = 0;
          while (task === 0) {
            const line = lab
              .ctr(['task', 'ls'])
              .stdout.split('\n')
              .find((row) => row.startsWith(`${victim} `) && /\bRUNNING\b/.test(row));
            task = line === undefined ? 0 : Number(line.split(/\s+/)[1]);
            if (Date.now() > deadline) throw new Error('the victim did not start');
            if (task === 0) await new Promise((done) => setTimeout(done, 200));
          }
          const shim = shimOf(victim);
          const containerd = lab.daemonPid!;
          // sandlock-oci: the supervisor (the task) and the sleep under it; runc: the sleep.
          const workload = [task, ...childrenOf(task)];
          const victimRoot = join(
            lab.dir,
            'state',
            'io.containerd.runtime.v2.task',
            NAMESPACE,
            victim,
            'rootfs',
          );
          writeFileSync(join(victimRoot, 'tmp', 'victim-secret'), 'victim-secret\n');
          const targets = [shim, containerd, ...workload];

          const out = run(
            'processes',
            [
              `r control /etc/inside`,
              `r shim-environ /proc/${shim}/environ`,
              `r shim-cwd /proc/${shim}/cwd/config.json`,
              `r shim-root /proc/${shim}/root${secret}`,
              `if true < /proc/${shim}/mem; then echo "shim-mem: opened"; else echo "shim-mem: none"; fi 2>/dev/null`,
              `r containerd-environ /proc/${containerd}/environ`,
              `r containerd-root /proc/${containerd}/root${secret}`,
              `r victim-file ${victimRoot}/tmp/victim-secret`,
              `r victim-proc-root /proc/${task}/root/tmp/victim-secret`,
              `r victim-proc-environ /proc/${task}/environ`,
              // Signals: by pid; then, only if none of those got through (a
              // broken confinement must not go on to kill the machine's
              // processes), to every process /proc lists and to the pids
              // around the victim's.
              ...targets.map(
                (pid) =>
                  `if kill -9 ${pid} 2>/dev/null; then echo "kill-${pid}: sent"; sent=1; else echo "kill-${pid}: refused"; fi`,
              ),
              'if [ -z "$sent" ]; then',
              // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's parameter expansion
              '  for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] || kill -9 "$p" 2>/dev/null; done',
              `  i=${Math.max(2, Math.min(...targets) - 32)}; while [ $i -le ${Math.max(...targets) + 32} ]; do [ $i = $$ ] || kill -9 $i 2>/dev/null; i=$((i + 1)); done`,
              '  echo "after-signals: alive"',
              'fi',
            ].join('\n'),
          );
          const seen = results(out.stdout);
          expect(seen.get('control'), out.stderr).toBe('read inside');
          for (const attempt of [
            'shim-environ',
            'shim-cwd',
            'shim-root',
            'shim-mem',
            'containerd-environ',
            'containerd-root',
            'victim-file',
            'victim-proc-root',
            'victim-proc-environ',
          ]) {
            expect(`${attempt}: ${seen.get(attempt)}`).toBe(`${attempt}: none`);
          }
          for (const pid of targets)
            expect(`kill-${pid}: ${seen.get(`kill-${pid}`)}`).toBe(`kill-${pid}: refused`);
          expect(seen.get('after-signals')).toBe('alive');
          expect(out.status).toBe(0);
          for (const pid of targets) expect(alive(pid), `pid ${pid}`).toBe(true);
          expect(lab.ctr(['version']).status).toBe(0);
        } finally {
          lab.ctr(['task', 'kill', '-s', 'SIGKILL', victim]);
          await ended;
        }
      },
      HANG * 2,
    );

    it('writes nothing through a read-only bind mount', () => {
      const before = statSync(join(readOnly, 'seed'));
      const writable = mkdtempSync(join(lab.dir, 'writable-'));
      const attempt = (what: string, command: string) =>
        `if ${command} 2>/dev/null; then echo "${what}: done"; else echo "${what}: refused"; fi`;
      const out = run(
        'bind',
        [
          attempt('control', 'echo x > /rw/new'),
          attempt('create', 'echo x > /ro/new'),
          attempt('append', 'echo x >> /ro/seed'),
          attempt('truncate', 'true > /ro/seed'),
          attempt('rm', 'rm /ro/seed'),
          attempt('mv', 'mv /ro/seed /ro/moved'),
          attempt('mkdir', 'mkdir /ro/dir'),
          attempt('symlink', 'ln -s x /ro/link'),
          attempt('chmod', 'chmod 777 /ro/seed'),
          attempt('touch', 'touch -d 2000-01-01 /ro/seed'),
        ].join('\n'),
        [
          '--mount',
          `type=bind,src=${readOnly},dst=/ro,options=rbind:ro`,
          '--mount',
          `type=bind,src=${writable},dst=/rw,options=rbind:rw`,
        ],
      );
      const seen = results(out.stdout);
      expect(seen.get('control'), out.stderr).toBe('done');
      for (const what of [
        'create',
        'append',
        'truncate',
        'rm',
        'mv',
        'mkdir',
        'symlink',
        'chmod',
        'touch',
      ]) {
        expect(`${what}: ${seen.get(what)}`).toBe(`${what}: refused`);
      }
      expect(readdirSync(readOnly)).toEqual(['seed']);
      expect(readFileSync(join(readOnly, 'seed'), 'utf8')).toBe('seed\n');
      const after = statSync(join(readOnly, 'seed'));
      expect([after.mode, after.mtimeMs]).toEqual([before.mode, before.mtimeMs]);
    });

    it("leaves the image's lower layers as they were", () => {
      const snapshots = join(
        lab.dir,
        'root',
        'io.containerd.snapshotter.v1.overlayfs',
        'snapshots',
      );
      const lower = readdirSync(snapshots).map((snapshot) => join(snapshots, snapshot, 'fs'));
      const out = run(
        'layers',
        [
          'echo tampered > /etc/inside; r upper /etc/inside',
          'echo tampered >> /bin/busybox; echo "appended: $?"',
          ...lower.map(
            (dir, index) =>
              `(echo tampered > ${dir}/etc/inside) 2>/dev/null; r direct-${index} ${dir}/etc/inside`,
          ),
        ].join('\n'),
      );
      const seen = results(out.stdout);
      // The container's own copy changes (overlayfs' upper layer), the image's does not.
      expect(seen.get('upper'), out.stderr).toBe('read tampered');
      for (const [index] of lower.entries()) expect(seen.get(`direct-${index}`)).toBe('none');
      for (const dir of lower) {
        for (const [file, content] of [['etc/inside', 'inside\n']] as const) {
          try {
            expect(readFileSync(join(dir, file), 'utf8')).toBe(content);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
          }
        }
        try {
          expect(
            readFileSync(join(dir, 'bin', 'busybox')).equals(readFileSync('/bin/busybox')),
          ).toBe(true);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        }
      }
      const fresh = run('layers-fresh', 'r fresh /etc/inside');
      expect(results(fresh.stdout).get('fresh')).toBe('read inside');
    });
  });
});
