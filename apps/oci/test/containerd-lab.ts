import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The runtime under test, as containerd's shim runs it (BinaryName). */
export const SANDLOCK_OCI = fileURLToPath(new URL('../bin/sandlock-oci.cjs', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../dist/main.cjs', import.meta.url));
/** The CLI, for `sandlock run` inside a container (built by `pnpm build`). */
export const CLI_DIR = fileURLToPath(new URL('../../cli', import.meta.url));

export const IMAGE = 'docker.io/local/bb:latest';
/** A namespace of this run's own: the runtimes keep state under /run/containerd/runc/<namespace>. */
export const NAMESPACE = `sandlock-oci-test-${process.pid}`;

function which(command: string): string | null {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** Why the containerd tests cannot run here, or null. */
export function missingForContainerd(): string | null {
  if (!existsSync(BUNDLE)) return `${BUNDLE} is missing: run 'pnpm build' first`;
  if (process.getuid?.() !== 0) return 'containerd needs root';
  for (const tool of ['containerd', 'ctr', 'runc', 'umoci', 'script']) {
    if (which(tool) === null) {
      return `${tool} is not installed (apt-get install containerd runc umoci util-linux)`;
    }
  }
  if (!isStaticBusybox('/bin/busybox')) {
    return 'no static /bin/busybox (apt-get install busybox-static)';
  }
  return null;
}

function isStaticBusybox(path: string): boolean {
  if (!existsSync(path)) return false;
  // A static ELF64 has no PT_INTERP (3) program header (elf(5)).
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46) return false;
  const offset = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  for (let index = 0; index < count; index++) {
    if (elf.readUInt32LE(offset + index * size) === 3) return false;
  }
  return true;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A private containerd (own root, state and socket) with a busybox image built offline. */
export class ContainerdLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'sandlock-oci-containerd-'));
  readonly socket = join(this.dir, 'containerd.sock');
  private daemon: ChildProcess | null = null;

  /** containerd's pid, once started. */
  get daemonPid(): number | undefined {
    return this.daemon?.pid;
  }

  /**
   * Builds the image: a busybox-static rootfs, umoci init/new/unpack/repack,
   * a tar of the layout; `addToRoot` puts more into the rootfs first.
   */
  buildImage(addToRoot?: (rootfs: string) => void): string {
    const layout = join(this.dir, 'img');
    const bundle = join(this.dir, 'unpacked');
    this.must('umoci', ['init', '--layout', layout]);
    this.must('umoci', ['new', '--image', `${layout}:latest`]);
    this.must('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    for (const dir of ['bin', 'tmp', 'proc', 'dev', 'etc', 'sys', 'run']) {
      mkdirSync(join(rootfs, dir), { recursive: true });
    }
    const busybox = join(rootfs, 'bin', 'busybox');
    writeFileSync(busybox, readFileSync('/bin/busybox'), { mode: 0o755 });
    const applets = this.must('/bin/busybox', ['--list']).stdout.split('\n').filter(Boolean);
    for (const applet of applets) {
      if (applet !== 'busybox') linkSync(busybox, join(rootfs, 'bin', applet));
    }
    addToRoot?.(rootfs);
    this.must('umoci', ['repack', '--image', `${layout}:latest`, bundle]);
    this.must('umoci', [
      'config',
      '--image',
      `${layout}:latest`,
      '--config.env',
      'PATH=/bin',
      '--config.cmd',
      'sh',
    ]);
    // The same root as the CRI's pod sandbox image (`bb:pause`): a process that waits.
    this.must('umoci', [
      'config',
      '--image',
      `${layout}:latest`,
      '--tag',
      'pause',
      '--clear',
      'config.cmd',
      '--config.cmd',
      'sleep',
      '--config.cmd',
      '86400',
    ]);
    const tar = join(this.dir, 'img.tar');
    this.must('tar', ['-C', layout, '-cf', tar, '.']);
    return tar;
  }

  /** containerd's own output, for a failure's message. */
  readonly log = join(this.dir, 'containerd.log');

  /**
   * Starts containerd and waits (deadline only for a hang) until it answers;
   * `criConfig`: more lines of the CRI plugin's section.
   */
  async start(criConfig: readonly string[] = []): Promise<void> {
    const config = join(this.dir, 'config.toml');
    writeFileSync(
      config,
      [
        'version = 2',
        `root = "${join(this.dir, 'root')}"`,
        `state = "${join(this.dir, 'state')}"`,
        '[grpc]',
        `  address = "${this.socket}"`,
        '[ttrpc]',
        `  address = "${this.socket}.ttrpc"`,
        // Needed where the daemon lacks CAP_SYS_RESOURCE (containerd docs/cri/config.md).
        '[plugins."io.containerd.grpc.v1.cri"]',
        '  restrict_oom_score_adj = true',
        ...criConfig,
        '',
      ].join('\n'),
    );
    const log = openSync(this.log, 'w');
    this.daemon = spawn('containerd', ['--config', config], {
      stdio: ['ignore', 'ignore', log],
      detached: true,
    });
    closeSync(log);
    const deadline = Date.now() + 60_000;
    while (this.ctr(['version']).status !== 0) {
      if (this.daemon.exitCode !== null) throw new Error('containerd exited at start');
      if (Date.now() > deadline) throw new Error('containerd did not answer in 60 s');
      await new Promise((done) => setTimeout(done, 200));
    }
  }

  /** A seccomp profile that allows everything but mkdir (EPERM). */
  mkdirProfile(): string {
    const path = join(this.dir, 'no-uname.json');
    writeFileSync(
      path,
      JSON.stringify({
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
      }),
    );
    return path;
  }

  /**
   * A config.json for `ctr run --config` (ctr 1.6 has no --user): ctr's
   * default spec with the image's unpacked root, `args`, and `user`.
   */
  specWith(args: readonly string[], user: Record<string, unknown>): string {
    const spec = JSON.parse(this.ctr(['oci', 'spec']).stdout) as Record<string, unknown>;
    spec.root = { path: join(this.dir, 'unpacked', 'rootfs') };
    spec.process = {
      ...(spec.process as Record<string, unknown>),
      args,
      env: ['PATH=/bin'],
      user,
    };
    const path = join(this.dir, `spec-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify(spec));
    return path;
  }

  /**
   * A root directory (for `ctr run --rootfs`) holding the host's node, a few
   * programs with their libraries, and the CLI bundle with its dependencies
   * under /opt/sandlock, as apps/cli/test/docker.test.ts builds its image.
   */
  nodeRootfs(): string {
    const root = join(this.dir, 'node-root');
    if (existsSync(join(root, 'opt/sandlock'))) return root;
    const copy = (path: string) => {
      mkdirSync(join(root, dirname(path)), { recursive: true });
      cpSync(realpathSync(path), join(root, path), { dereference: true });
    };
    for (const dir of ['proc', 'sys', 'dev', 'tmp', 'etc']) {
      mkdirSync(join(root, dir), { recursive: true });
    }
    for (const program of [
      process.execPath,
      '/bin/sh',
      '/bin/echo',
      '/usr/bin/head',
      '/bin/ls',
      '/bin/grep',
      '/bin/uname',
    ]) {
      copy(program);
      for (const match of this.must('ldd', [program]).stdout.matchAll(/(\/\S+)/g)) copy(match[1]!);
    }
    const opt = join(root, 'opt/sandlock');
    for (const entry of ['bin', 'dist', 'package.json']) {
      cpSync(join(CLI_DIR, entry), join(opt, entry), { recursive: true, dereference: true });
    }
    // pnpm keeps a package's own dependencies beside it: the whole folder.
    for (const name of ['diff', 'koffi', 'toml-eslint-parser']) {
      const store = dirname(realpathSync(join(CLI_DIR, 'node_modules', name)));
      cpSync(store, join(opt, 'node_modules'), { recursive: true, dereference: true });
    }
    return root;
  }

  importImage(tar: string): void {
    const imported = this.ctr(['images', 'import', '--base-name', 'docker.io/local/bb', tar]);
    if (imported.status !== 0) throw new Error(`ctr images import: ${imported.stderr}`);
  }

  /** ctr's arguments for this containerd and `namespace`, then `args`. */
  ctrArgs(args: readonly string[], namespace = NAMESPACE): string[] {
    return ['--address', this.socket, '--namespace', namespace, ...args];
  }

  ctr(args: readonly string[], timeout = 120_000): Run {
    return this.run('ctr', this.ctrArgs(args), timeout);
  }

  /** `ctr run --rm` of the image with `runtime` as the runc binary. */
  ctrRun(runtime: string, id: string, options: readonly string[], command: readonly string[]): Run {
    return this.ctr(['run', '--rm', '--runc-binary', runtime, ...options, IMAGE, id, ...command]);
  }

  /** The same under a terminal (script(1)), for `ctr run -t`. */
  ctrRunTerminal(runtime: string, id: string, command: string): Run {
    const line = [
      'ctr',
      ...this.ctrArgs([
        'run',
        '--rm',
        '-t',
        '--runc-binary',
        runtime,
        IMAGE,
        id,
        'sh',
        '-c',
        `'${command}'`,
      ]),
    ].join(' ');
    return this.run('script', ['-qec', line, '/dev/null'], 120_000);
  }

  run(command: string, args: readonly string[], timeout: number): Run {
    const result = spawnSync(command, args, { encoding: 'utf8', timeout });
    return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
  }

  private must(command: string, args: readonly string[]): Run {
    const result = this.run(command, args, 120_000);
    if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
    return result;
  }

  stop(): void {
    // Tasks a failed test left running.
    for (const task of this.ctr(['task', 'ls', '-q']).stdout.split('\n').filter(Boolean)) {
      this.ctr(['task', 'kill', '-s', 'SIGKILL', task]);
      this.ctr(['task', 'rm', '-f', task]);
    }
    for (const container of this.ctr(['container', 'ls', '-q'])
      .stdout.split('\n')
      .filter(Boolean)) {
      this.ctr(['container', 'rm', container]);
    }
    if (this.daemon?.pid !== undefined && this.daemon.exitCode === null) {
      process.kill(this.daemon.pid, 'SIGTERM');
    }
    // The snapshots and rootfs mounts a failed test left, deepest first.
    const points = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => line.split(' ')[4])
      .filter((point): point is string => point?.startsWith(`${this.dir}/`) === true)
      .sort((a, b) => b.length - a.length);
    for (const point of points) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true });
    // The runtimes' root for this namespace (the shim makes it; delete leaves it, as with runc).
    rmSync(`/run/containerd/runc/${NAMESPACE}`, { recursive: true, force: true });
  }
}
