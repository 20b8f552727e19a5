// sandlock inside `docker run` with Docker's default seccomp profile and no
// added capability. A private dockerd (its own data root, exec root, pid file
// and socket: nothing of the machine's is touched) runs an image made
// offline: the host's node and a few programs with their libraries, and the
// bundled CLI with its dependencies, imported from a tar (no registry).
// The same daemon has the OCI runtime added (`--add-runtime sandlock-oci=`)
// for `docker run --runtime sandlock-oci`.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const DOCKERD = '/usr/sbin/dockerd';
// The docker.io package's client (another may come first in PATH).
const DOCKER = '/usr/bin/docker';
const CLI_DIR = fileURLToPath(new URL('..', import.meta.url));
/** The OCI runtime, added to the daemon as `sandlock-oci` (`dockerd --add-runtime`). */
const SANDLOCK_OCI = fileURLToPath(new URL('../../oci/bin/sandlock-oci.cjs', import.meta.url));
const OCI_BUNDLE = fileURLToPath(new URL('../../oci/dist/main.cjs', import.meta.url));
const IMAGE = 'sandlock-in-docker:test';
const PROGRAMS = [
  '/bin/sh',
  '/bin/echo',
  '/bin/cat',
  '/bin/ls',
  '/bin/uname',
  '/usr/bin/head',
  '/bin/chmod',
  '/bin/grep',
];
/** The CLI's runtime dependencies (package.json `dependencies`). */
const DEPENDENCIES = ['diff', 'koffi', 'toml-eslint-parser'];
/** Only catches hangs: dockerd and an import of ~120 MB take seconds. */
const HANG = 180_000;

const work = mkdtempSync(join(tmpdir(), 'sandlock-docker-'));
const socket = join(work, 'docker.sock');
let daemon: ChildProcess | null = null;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion without blocking the event loop (vitest's RPC runs on it). */
function run(file: string, args: readonly string[], timeout = HANG): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        encoding: 'utf8',
        timeout,
        maxBuffer: 64 << 20,
        env: { ...process.env, DOCKER_HOST: `unix://${socket}` },
      },
      (error, stdout, stderr) => {
        const code = (error as { code?: unknown } | null)?.code;
        resolve({
          status: error === null ? 0 : typeof code === 'number' ? code : null,
          stdout,
          stderr,
        });
      },
    );
  });
}

function docker(args: readonly string[], timeout = HANG): Promise<Ran> {
  return run(DOCKER, args, timeout);
}

/** Starts the private dockerd; null when it serves, else why not. */
async function startDaemon(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'dockerd needs root here';
  for (const binary of [DOCKERD, DOCKER]) {
    if (!existsSync(binary)) return `${binary} is missing (apt-get install docker.io)`;
  }
  daemon = spawn(
    DOCKERD,
    [
      '--data-root',
      join(work, 'data'),
      '--exec-root',
      join(work, 'exec'),
      '--pidfile',
      join(work, 'dockerd.pid'),
      '-H',
      `unix://${socket}`,
      '--bridge',
      'none',
      '--iptables=false',
      '--ip-masq=false',
      '--storage-driver',
      'vfs',
      '--add-runtime',
      `sandlock-oci=${SANDLOCK_OCI}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const output: Buffer[] = [];
  daemon.stderr!.on('data', (chunk: Buffer) => output.push(chunk));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (daemon.exitCode !== null) break;
    if (
      existsSync(socket) &&
      (await docker(['info', '--format', '{{.ServerVersion}}'], 20_000)).status === 0
    ) {
      return null;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const tail = Buffer.concat(output).toString('utf8').split('\n').slice(-5).join('\n');
  return `dockerd did not start:\n${tail}`;
}

/** Copies `binary` and every library ldd names into `root`, at their paths. */
async function copyWithLibraries(binary: string, root: string): Promise<void> {
  const copy = (path: string) => {
    mkdirSync(join(root, dirname(path)), { recursive: true });
    cpSync(realpathSync(path), join(root, path), { dereference: true });
  };
  copy(binary);
  const listed = (await run('ldd', [binary])).stdout;
  for (const match of listed.matchAll(/(\/\S+)/g)) copy(match[1]!);
}

/** The image: node, a few programs, the CLI bundle and its dependencies, under /opt/sandlock. */
async function buildImage(): Promise<void> {
  const root = join(work, 'root');
  for (const dir of ['proc', 'sys', 'dev', 'tmp', 'etc'])
    mkdirSync(join(root, dir), { recursive: true });
  for (const program of [process.execPath, ...PROGRAMS]) await copyWithLibraries(program, root);
  const opt = join(root, 'opt/sandlock');
  for (const entry of ['bin', 'dist', 'package.json']) {
    cpSync(join(CLI_DIR, entry), join(opt, entry), { recursive: true, dereference: true });
  }
  // pnpm keeps a package's own dependencies beside it: copy the whole folder.
  for (const name of DEPENDENCIES) {
    const store = dirname(realpathSync(join(CLI_DIR, 'node_modules', name)));
    cpSync(store, join(opt, 'node_modules'), { recursive: true, dereference: true });
  }
  const tar = join(work, 'root.tar');
  const packed = await run('tar', ['-C', root, '-cf', tar, '.']);
  if (packed.status !== 0) throw new Error(`tar failed: ${packed.stderr}`);
  const imported = await docker(['import', tar, IMAGE]);
  if (imported.status !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
}

const skipReason = await startDaemon();
if (skipReason !== null) console.warn(`skipping the Docker tests: ${skipReason}`);
else await buildImage();

afterAll(async () => {
  if (daemon !== null && daemon.exitCode === null) {
    await docker(['rmi', '-f', IMAGE], 60_000);
    const exited = new Promise((resolve) => daemon!.once('exit', resolve));
    daemon.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
  }
  rmSync(work, { recursive: true, force: true });
}, HANG);

const SYSTEM = ['-r', '/bin', '-r', '/usr', '-r', '/lib', '-r', '/lib64'];

/** `docker run --rm` of the image (default seccomp profile, no added capability): sandlock ARGS. */
function inDocker(args: readonly string[], dockerFlags: readonly string[] = []): Promise<Ran> {
  return docker([
    'run',
    '--rm',
    ...dockerFlags,
    IMAGE,
    process.execPath,
    '/opt/sandlock/bin/sandlock.cjs',
    ...args,
  ]);
}

describe.skipIf(skipReason !== null)('sandlock inside docker run (default seccomp profile)', () => {
  it(
    'check: pidfd_getfd and process_vm_* are refused; Sandlock can run',
    async () => {
      const result = await inDocker(['check']);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^pidfd_getfd\s+missing .*EPERM/m);
      expect(result.stdout).toMatch(/^process_vm_readv\/writev\s+missing/m);
      expect(result.stdout).toMatch(/^seccomp listener handed to the supervisor\s+OK/m);
      expect(result.stdout).toContain('Sandlock can run here.');
      expect(result.status).toBe(0);
    },
    HANG,
  );

  it(
    'with --cap-add SYS_PTRACE, pidfd_getfd works (the control)',
    async () => {
      const result = await inDocker(['check'], ['--cap-add', 'SYS_PTRACE']);
      expect(result.stdout).toMatch(/^pidfd_getfd\s+OK/m);
      expect(result.status).toBe(0);
    },
    HANG,
  );

  it(
    'sandlock run -- /bin/echo ok',
    async () => {
      const result = await inDocker(['run', ...SYSTEM, '--', '/bin/echo', 'ok']);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('ok\n');
      expect(result.status).toBe(0);
    },
    HANG,
  );

  it(
    "a supervised sandbox: virtual hostname, /proc/self, /proc listed without the container's processes",
    async () => {
      const result = await inDocker([
        'run',
        ...SYSTEM,
        '-r',
        '/proc',
        '--hostname',
        'boxed',
        '--',
        '/bin/sh',
        '-c',
        'cat /proc/sys/kernel/hostname; uname -n; head -1 /proc/self/status; ls /proc | grep -x -e 1 -e self',
      ]);
      // pid 1 is the container's first process, sandlock itself: outside the sandbox.
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('boxed\nboxed\nName:\thead\nself\n');
    },
    HANG,
  );

  it(
    'root writing: chmod made on its behalf',
    async () => {
      const result = await inDocker([
        'run',
        ...SYSTEM,
        '-w',
        '/tmp',
        '--',
        '/bin/sh',
        '-c',
        'echo x > /tmp/f && chmod 600 /tmp/f && ls -l /tmp/f',
      ]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^-rw------- /);
      expect(result.status).toBe(0);
    },
    HANG,
  );

  it(
    '--workdir does not start, naming pidfd_getfd and CAP_SYS_PTRACE',
    async () => {
      const result = await inDocker([
        'run',
        ...SYSTEM,
        '--workdir',
        '/tmp',
        '--',
        '/bin/echo',
        'ran',
      ]);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('refuses pidfd_getfd');
      expect(result.stderr).toContain('workdir (copy-on-write)');
      expect(result.status).toBe(125);
    },
    HANG,
  );
});

const ociMissing =
  skipReason ?? (existsSync(OCI_BUNDLE) ? null : `${OCI_BUNDLE} is missing: run 'pnpm build'`);
if (ociMissing !== null && skipReason === null) {
  console.warn(`skipping docker run --runtime sandlock-oci: ${ociMissing}`);
}

/** `docker run --rm --runtime sandlock-oci` of the image. */
function underSandlockOci(command: readonly string[], dockerFlags: readonly string[] = []) {
  return docker(['run', '--rm', '--runtime', 'sandlock-oci', ...dockerFlags, IMAGE, ...command]);
}

describe.skipIf(ociMissing !== null)('docker run --runtime sandlock-oci', () => {
  it(
    'passes the exit status and stdout through',
    async () => {
      const result = await underSandlockOci(['/bin/sh', '-c', 'echo out-$((6 * 7)); exit 7']);
      expect(result.stdout).toBe('out-42\n');
      expect(result.status).toBe(7);
    },
    HANG,
  );

  it(
    'runs with a terminal (-t): the pty sent to the console socket',
    async () => {
      const result = await underSandlockOci(
        ['/bin/sh', '-c', '[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo tty-ok; exit 3'],
        ['-t'],
      );
      expect(result.stdout).toBe('tty-ok\r\n');
      expect(result.status).toBe(3);
    },
    HANG,
  );

  it(
    'kills a container over its memory limit (--memory)',
    async () => {
      // The shell's own string doubles until it holds 512 MiB: no program runs but the shell.
      const result = await underSandlockOci(
        [
          '/bin/sh',
          '-c',
          'echo start; x=a; i=0; while [ $i -lt 29 ]; do x="$x$x"; i=$((i + 1)); done; echo survived',
        ],
        ['--memory', '64m'],
      );
      expect(result.stdout).toBe('start\n');
      expect(result.status).toBe(137);
    },
    HANG,
  );

  it(
    'a bind mount is writable, the same directory bound :ro is not',
    async () => {
      const host = mkdtempSync(join(work, 'bind-'));
      writeFileSync(join(host, 'seed'), 'seed\n');
      const result = await underSandlockOci(
        [
          '/bin/sh',
          '-c',
          'cat /data/seed; echo made > /data/new; (echo x > /ro/denied) 2>/dev/null || echo refused; cat /ro/new',
        ],
        ['-v', `${host}:/data`, '-v', `${host}:/ro:ro`],
      );
      expect(result.stdout).toBe('seed\nrefused\nmade\n');
      expect(result.status).toBe(0);
      expect(readdirSync(host).sort()).toEqual(['new', 'seed']);
    },
    HANG,
  );

  it(
    "the container's host name, from Docker's /etc/hostname bind and config.json",
    async () => {
      const result = await underSandlockOci(
        ['/bin/sh', '-c', 'cat /etc/hostname; echo "$HOSTNAME"'],
        ['--hostname', 'boxed'],
      );
      expect(result.stdout).toBe('boxed\nboxed\n');
      expect(result.status).toBe(0);
    },
    HANG,
  );
});
