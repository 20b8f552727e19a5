import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox } from 'sandlock';
import { interleave, summarize } from './stats.mjs';

const PYTHON = '/usr/bin/python3';
const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/etc'].filter((path) => existsSync(path));

function run(argv, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

/**
 * A copy-on-write workdir against the same work done bare and in a sandbox
 * that writes the directory itself: `tar x` of `files` small files into it,
 * and `python3 -c pass` started in it (every path-taking call notified).
 */
export async function benchWorkdir(runs = 8, files = 10_000) {
  const root = mkdtempSync(join(tmpdir(), 'sandlock-bench-cow-'));
  const storage = join(root, 'store');
  const source = join(root, 'source');
  mkdirSync(source);
  for (let i = 0; i < files; i++) {
    const dir = join(source, `d${i % 100}`);
    if (i < 100) mkdirSync(dir);
    writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`);
  }
  const tarball = join(root, 'files.tar');
  execFileSync('tar', ['cf', tarball, '-C', source, '.']);
  let next = 0;
  const fresh = () => {
    const dir = join(root, `x${next++}`);
    mkdirSync(dir);
    return dir;
  };
  const untar = ['tar', 'xf', tarball];
  const sandboxed = (argv, workdir) => async () => {
    const dir = fresh();
    const builder = Sandbox.builder()
      .fsRead(...SYSTEM, root)
      .cwd(dir);
    if (workdir) builder.workdir(dir).fsStorage(storage).onExit('abort');
    else builder.fsWrite(dir);
    const result = await builder.build().run(argv);
    if (result.exitCode !== 0) throw new Error(`exit ${result.exitCode}: ${result.stderr}`);
    rmSync(dir, { recursive: true, force: true });
  };
  const cases = {
    [`tar x of ${files} files, bare`]: async () => {
      const dir = fresh();
      await run(untar, dir);
      rmSync(dir, { recursive: true, force: true });
    },
    [`tar x, sandboxed (fsWrite)`]: sandboxed(untar, false),
    [`tar x, copy-on-write workdir`]: sandboxed(untar, true),
    'python3 -c pass, sandboxed': sandboxed([PYTHON, '-c', 'pass'], false),
    'python3 -c pass, copy-on-write workdir': sandboxed([PYTHON, '-c', 'pass'], true),
  };
  try {
    const result = summarize(await interleave(cases, runs, 1));
    const bare = result[`tar x of ${files} files, bare`].median;
    return {
      title: `copy-on-write workdir, ${runs} runs each, interleaved`,
      result,
      ratios: {
        'tar x, copy-on-write / bare': result['tar x, copy-on-write workdir'].median / bare,
        'tar x, copy-on-write / sandboxed':
          result['tar x, copy-on-write workdir'].median /
          result['tar x, sandboxed (fsWrite)'].median,
        'python3 -c pass, copy-on-write / sandboxed':
          result['python3 -c pass, copy-on-write workdir'].median /
          result['python3 -c pass, sandboxed'].median,
      },
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
