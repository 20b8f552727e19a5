import { execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarize } from './stats.mjs';

// SANDLOCK_DIST=/path/to/packages/sandlock/dist/index.js measures another
// build; SANDLOCK_DIST_BEFORE=… adds its sandboxed cases, interleaved with
// this build's (a before and after).
const { Sandbox } = await import(process.env.SANDLOCK_DIST ?? 'sandlock');
const before = process.env.SANDLOCK_DIST_BEFORE;
const SandboxBefore = before === undefined ? null : (await import(before)).Sandbox;
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));
const IDENTITY = ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid'];
const GIT_ENV = { GIT_CONFIG_NOSYSTEM: '1', HOME: '/nonexistent', LC_ALL: 'C' };

function git(dir, ...args) {
  execFileSync('git', [...IDENTITY, ...args], {
    cwd: dir,
    stdio: 'ignore',
    env: { ...process.env, ...GIT_ENV },
  });
}

function run(argv, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), {
      cwd,
      stdio: 'ignore',
      env: { ...process.env, ...GIT_ENV },
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

/**
 * Every file of a work tree dated a minute back and the index refreshed:
 * no entry is "racily clean" (git rehashes a file whose mtime is not older
 * than the index), so each sample's git does the same work.
 */
function settle(dir) {
  const past = new Date(Date.now() - 60_000);
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!path.startsWith(join(dir, '.git'))) utimesSync(path, past, past);
  }
  git(dir, 'update-index', '-q', '--refresh');
}

/**
 * `git status` and `git commit -a` (10 of `files` files changed) in a
 * repository, bare, in a sandbox that writes the repository (`fsWrite`) and
 * with the repository as the copy-on-write workdir (the layer aborted at
 * the end). Each commit sample gets a fresh clone, made and settled outside
 * the timed part; status runs on one settled repository.
 */
export async function benchWorkdirGit(runs = 5, files = 5_000) {
  const root = mkdtempSync(join(tmpdir(), 'sandlock-bench-git-'));
  const storage = join(root, 'store');
  const template = join(root, 'template');
  mkdirSync(template);
  for (let i = 0; i < files; i++) {
    const dir = join(template, `d${i % 50}`);
    if (i < 50) mkdirSync(dir);
    writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n${'x'.repeat(i % 200)}\n`);
  }
  git(template, 'init', '-q');
  git(template, 'add', '.');
  git(template, 'commit', '-qm', 'files');
  settle(template);
  let next = 0;
  const clone = () => {
    const dir = join(root, `c${next++}`);
    git(root, 'clone', '-q', '--no-hardlinks', template, dir);
    settle(dir);
    for (let i = 0; i < 10; i++) appendFileSync(join(dir, `d${i}`, `f${i}.txt`), 'changed\n');
    return dir;
  };
  const status = ['git', ...IDENTITY, 'status', '--porcelain'];
  const commit = ['git', ...IDENTITY, 'commit', '-qam', 'change'];
  const python = ['python3', '-c', 'pass'];
  const inSandbox =
    (workdir, build = Sandbox) =>
    async (argv, dir) => {
      const builder = build
        .builder()
        .fsRead(...SYSTEM, root)
        .cwd(dir)
        .env(GIT_ENV);
      if (workdir) builder.workdir(dir).fsStorage(storage).onExit('abort');
      else builder.fsWrite(dir);
      const result = await builder.build().run(argv);
      if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
    };
  const modes = {
    bare: run,
    'sandboxed (fsWrite)': inSandbox(false),
    'copy-on-write workdir': inSandbox(true),
    ...(SandboxBefore === null
      ? {}
      : {
          'sandboxed (fsWrite), before': inSandbox(false, SandboxBefore),
          'copy-on-write workdir, before': inSandbox(true, SandboxBefore),
        }),
  };
  const cases = {};
  for (const [mode, exec] of Object.entries(modes)) {
    cases[`git status, ${files} files, ${mode}`] = {
      prepare: () => template,
      run: (dir) => exec(status, dir),
    };
    cases[`git commit -a, ${files} files, ${mode}`] = {
      prepare: clone,
      run: (dir) => exec(commit, dir),
      done: (dir) => rmSync(dir, { recursive: true, force: true }),
    };
    cases[`python3 -c pass in the repository, ${mode}`] = {
      prepare: () => template,
      run: (dir) => exec(python, dir),
    };
  }
  try {
    const samples = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
    /** This process's CPU time per sandboxed run: its supervisor's threads. */
    const cpu = Object.fromEntries(
      Object.keys(cases)
        .filter((name) => !name.endsWith(', bare'))
        .map((name) => [name, []]),
    );
    for (let i = -1; i < runs; i++) {
      for (const [name, { prepare, run: timed, done }] of Object.entries(cases)) {
        const dir = prepare();
        const used = process.cpuUsage();
        const start = process.hrtime.bigint();
        await timed(dir);
        const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
        const { user, system } = process.cpuUsage(used);
        done?.(dir);
        if (i >= 0) {
          // The first round warms up.
          samples[name].push(elapsed);
          cpu[name]?.push((user + system) / 1000);
        }
      }
    }
    const result = summarize(samples);
    for (const [name, values] of Object.entries(summarize(cpu))) {
      result[`${name}, supervisor CPU`] = values;
    }
    const ratio = (what, mode, base) =>
      result[`${what}, ${files} files, ${mode}`].median /
      result[`${what}, ${files} files, ${base}`].median;
    return {
      title: `git and python3 -c pass in a ${files}-file repository, ${runs} runs each, interleaved`,
      result,
      ratios: {
        'git status, copy-on-write / bare': ratio('git status', 'copy-on-write workdir', 'bare'),
        'git status, copy-on-write / sandboxed': ratio(
          'git status',
          'copy-on-write workdir',
          'sandboxed (fsWrite)',
        ),
        'git commit -a, copy-on-write / bare': ratio(
          'git commit -a',
          'copy-on-write workdir',
          'bare',
        ),
        'git commit -a, copy-on-write / sandboxed': ratio(
          'git commit -a',
          'copy-on-write workdir',
          'sandboxed (fsWrite)',
        ),
      },
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
