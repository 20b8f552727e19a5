import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// What a user of the registry gets: every published package packed by pnpm
// (which rewrites workspace:* to the version), installed with npm into a
// project outside the workspace, then used from ESM, from CommonJS and as a
// globally installed command.

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund'];
/** Only catches hangs: an install from a cold cache takes seconds. */
const HANG = 180_000;

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  repository?: { type?: string; url?: string; directory?: string };
  engines?: { node?: string };
  files?: string[];
  sideEffects?: boolean | string[];
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface Published {
  /** Relative to the repository, e.g. packages/sys. */
  dir: string;
  manifest: Manifest;
}

/** Every package of packages/ and apps/ that is not private. */
function publishedPackages(): Published[] {
  return ['packages', 'apps'].flatMap((parent) =>
    readdirSync(join(ROOT, parent))
      .map((name) => `${parent}/${name}`)
      .filter((dir) => existsSync(join(ROOT, dir, 'package.json')))
      .map((dir) => ({
        dir,
        manifest: JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest,
      }))
      .filter(({ manifest }) => manifest.private !== true),
  );
}

/** Every file an exports map points to, through nested conditions. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (value === null || typeof value !== 'object') return [];
  return Object.values(value).flatMap(exportTargets);
}

/** `name`, `name/sub`, … for every code entry of an exports map. */
function specifiers(manifest: Manifest): string[] {
  return Object.keys(manifest.exports ?? {})
    .filter((subpath) => subpath !== './package.json')
    .map((subpath) => (subpath === '.' ? manifest.name : `${manifest.name}${subpath.slice(1)}`));
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

/** Runs a command without blocking the event loop (vitest's worker answers its runner meanwhile). */
function run(command: string, args: readonly string[], cwd: string): Promise<Ran> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: join(cwd, '.cache') };
  // Set by pnpm when it runs the tests; npm would send it as its own.
  delete env.npm_config_user_agent;
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, env, encoding: 'utf8', timeout: HANG, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const status = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({
          status,
          stdout,
          stderr,
          ...(error !== null && status === null ? { error } : {}),
        });
      },
    );
  });
}

function ok(result: Ran, what: string): string {
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${what} exited ${result.status}:\n${result.stderr}\n${result.stdout}`);
  }
  return result.stdout;
}

/** Why npm cannot install here (not installed, registry unreachable), or undefined. */
async function npmUnavailable(cwd: string): Promise<string | undefined> {
  const version = await run('npm', ['--version'], cwd);
  if (version.error || version.status !== 0) {
    return `npm is not usable: ${version.error?.message ?? version.stderr.trim()}`;
  }
  // One try: npm's retries with back-off would take over a minute.
  const ping = await run('npm', ['ping', '--fetch-retries=0'], cwd);
  if (ping.error || ping.status !== 0) {
    const reason = ping.stderr.match(/^npm error (?:FetchError: )?(request to .*)$/m)?.[1];
    return `the npm registry is unreachable: ${ping.error?.message ?? reason ?? ping.stderr.trim()}`;
  }
  return undefined;
}

const packages = publishedPackages();
const scratch = mkdtempSync(join(tmpdir(), 'sandlock-install-'));
const project = join(scratch, 'project');
const prefix = join(scratch, 'global');
const cli = packages.find(({ manifest }) => manifest.bin?.['sandlock'] !== undefined);
let skip: string | undefined;

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

beforeAll(async () => {
  for (const { dir } of packages) {
    if (!existsSync(join(ROOT, dir, 'dist'))) {
      throw new Error(`${dir}/dist is missing: run 'pnpm build' first (pnpm test does)`);
    }
  }
  skip = await npmUnavailable(scratch);
  if (skip !== undefined) {
    console.warn(`install: skipping the installed-package tests: ${skip}`);
    return;
  }
  const tarballs = join(scratch, 'tarballs');
  mkdirSync(tarballs);
  for (const { dir } of packages) {
    ok(
      await run('pnpm', ['pack', '--pack-destination', tarballs], join(ROOT, dir)),
      `pnpm pack in ${dir}`,
    );
  }
  // pnpm names a tarball after the package: @sandlock/cli 0.0.0 is sandlock-cli-0.0.0.tgz.
  const tarball = ({ manifest }: Published) =>
    join(tarballs, `${manifest.name.replace(/^@/, '').replace('/', '-')}-${manifest.version}.tgz`);
  const libraryTarballs = packages.filter((published) => published !== cli).map(tarball);
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'scratch', version: '1.0.0', private: true }),
  );
  // All of them at once: the @sandlock/* dependencies are not on the registry.
  ok(
    await run('npm', ['install', ...NPM_FLAGS, ...libraryTarballs], project),
    'npm install of the tarballs',
  );
  ok(
    await run(
      'npm',
      ['install', '--global', '--prefix', prefix, ...NPM_FLAGS, tarball(cli!)],
      scratch,
    ),
    'npm install --global of the CLI',
  );
}, HANG * 3);

/** Where npm put a package: the CLI globally, the others in the project. */
function installed(published: Published): string {
  const { manifest } = published;
  return published === cli
    ? join(prefix, 'lib', 'node_modules', manifest.name)
    : join(project, 'node_modules', manifest.name);
}

describe('the packages as npm installs them', () => {
  it('publishes every package with what a registry user needs', async (context) => {
    if (skip !== undefined) context.skip();
    for (const published of packages) {
      const manifest: Manifest = JSON.parse(
        readFileSync(join(installed(published), 'package.json'), 'utf8'),
      );
      const where = `${published.dir}/package.json`;
      expect(manifest.license, where).toBe('Apache-2.0');
      expect(manifest.repository?.directory, where).toBe(published.dir);
      expect(manifest.repository?.url, where).toMatch(/^git\+https:/);
      expect(manifest.engines?.node, where).toMatch(/^\^20\.19\.0 /);
      expect(manifest.files, where).toContain('dist');
      const ranges = Object.values({ ...manifest.dependencies, ...manifest.devDependencies });
      expect(
        ranges.filter((range) => range.startsWith('workspace:')),
        where,
      ).toEqual([]);
      const files = [
        manifest.main,
        manifest.types,
        ...Object.values(manifest.bin ?? {}),
        ...exportTargets(manifest.exports),
      ].filter((file): file is string => file !== undefined);
      expect(files.length, where).toBeGreaterThan(0);
      for (const file of files) {
        expect(existsSync(join(installed(published), file)), `${where}: ${file}`).toBe(true);
      }
      if (manifest.bin !== undefined) continue;
      expect(manifest.sideEffects, where).toBeDefined();
      for (const entry of Object.values(manifest.exports ?? {})) {
        if (typeof entry === 'string') continue;
        // import for ESM; default for require() (Node 20.19+ loads ESM there).
        expect(Object.keys(entry as object), where).toEqual(['types', 'import', 'default']);
      }
    }
  });

  const libraries = () => packages.filter(({ manifest }) => manifest.bin === undefined);

  it(
    'loads every export with import and with require',
    async (context) => {
      if (skip !== undefined) context.skip();
      const all = libraries().flatMap(({ manifest }) => specifiers(manifest));
      expect(all).toContain('sandlock');
      const check = (load: string) =>
        `for (const s of process.argv.slice(2)) if (Object.keys(${load}).length === 0) throw new Error(s + ': no exports');\n`;
      writeFileSync(join(project, 'load.mjs'), check('await import(s)'));
      writeFileSync(join(project, 'load.cjs'), check('require(s)'));
      for (const script of ['load.mjs', 'load.cjs']) {
        const result = await run(process.execPath, [script, ...all], project);
        expect(result.stderr, script).toBe('');
        expect(result.status, script).toBe(0);
      }
    },
    HANG,
  );

  it(
    'resolves the types of every export from ESM and from CommonJS',
    async (context) => {
      if (skip !== undefined) context.skip();
      const all = libraries().flatMap(({ manifest }) => specifiers(manifest));
      const names = all.map((_, index) => `p${index}`);
      writeFileSync(
        join(project, 'types.mts'),
        [
          ...all.map((spec, index) => `import type * as ${names[index]} from '${spec}';`),
          `export type All = [${names.map((name) => `typeof ${name}`).join(', ')}];`,
          `import { Sandbox } from 'sandlock';`,
          `export const run = () => Sandbox.builder().hostname('x').build().run(['true']);`,
        ].join('\n'),
      );
      writeFileSync(
        join(project, 'types.cts'),
        [
          ...all.map((spec, index) => `import ${names[index]} = require('${spec}');`),
          `export type All = [${names.map((name) => `typeof ${name}`).join(', ')}];`,
          `export const run = () => p${all.indexOf('sandlock')}.Sandbox.builder().build().run(['true']);`,
        ].join('\n'),
      );
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'nodenext',
            target: 'es2022',
            strict: true,
            noEmit: true,
            // The packages' own declarations are checked too: one that imports
            // a file the tarball lacks fails here.
            skipLibCheck: false,
            types: ['node'],
            typeRoots: [join(ROOT, 'node_modules', '@types')],
          },
          files: ['types.mts', 'types.cts'],
        }),
      );
      const tsc = await run(
        process.execPath,
        [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
        project,
      );
      expect(tsc.stdout).toBe('');
      expect(tsc.status).toBe(0);
    },
    HANG,
  );

  // Supervised features load the handler module files of every package
  // (@sandlock/procfs, resource, determinism, fsmeta) and dispatch's worker
  // from where npm put them.
  const SUPERVISED = `Sandbox.builder().fsRead('/usr', '/etc').hostname('x').maxProcesses(5).build().run(['uname', '-n'])`;
  const REPORT = `.then((r) => console.log(JSON.stringify({ exitCode: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() })))`;

  it.for([
    ['ESM', 'esm.mjs', `import { Sandbox } from 'sandlock';\n${SUPERVISED}${REPORT};\n`],
    ['CommonJS', 'cjs.cjs', `const { Sandbox } = require('sandlock');\n${SUPERVISED}${REPORT};\n`],
  ] as const)(
    'runs a supervised sandbox through the library from %s',
    { timeout: HANG },
    async ([, file, source], context) => {
      if (skip !== undefined) context.skip();
      writeFileSync(join(project, file), source);
      const result = await run(process.execPath, [file], project);
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout)).toEqual({ exitCode: 0, stdout: 'x\n', stderr: '' });
    },
  );

  it(
    'runs a supervised sandbox through the globally installed CLI',
    async (context) => {
      if (skip !== undefined) context.skip();
      const bin = join(prefix, 'bin', 'sandlock');
      const result = await run(
        bin,
        ['run', '-r', '/usr', '-r', '/etc', '--hostname', 'box', '--', 'uname', '-n'],
        scratch,
      );
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe('box\n');
      expect(result.status).toBe(0);
    },
    HANG,
  );
});
