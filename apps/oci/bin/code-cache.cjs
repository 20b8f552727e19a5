'use strict';
// Runs one of the runtime's bundles (dist/*.cjs) through V8's code cache.
// containerd's shim starts the runtime four times or more per container, and
// `create` a supervisor besides; Node 20 has no compile cache for modules,
// and compiling the supervisor's bundle was about a third of its start
// (docs/benchmarks.md). The cache lives in a directory private to the user;
// anything unexpected there (or no such directory) means running without it.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
const os = require('node:os');

function cacheFile(bundle, name) {
  try {
    const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
    const dir = path.join(base, 'sandlock');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const owner = fs.statSync(dir);
    if (owner.uid !== process.getuid() || (owner.mode & 0o022) !== 0) return undefined;
    // V8 checks only the source length, so the key names this exact file.
    const stat = fs.statSync(bundle);
    const key = `${process.version}-${process.arch}-${stat.ino}-${stat.size}-${stat.mtimeMs}`;
    return {
      dir,
      prefix: `oci-${name}-code-cache-`,
      file: path.join(dir, `oci-${name}-code-cache-${key}`),
    };
  } catch {
    return undefined;
  }
}

/** Loads and runs `dist/<name>.cjs`, from the cache when it holds this exact bundle. */
exports.runBundle = function runBundle(name) {
  const bundle = path.join(__dirname, '..', 'dist', `${name}.cjs`);
  const source = fs.readFileSync(bundle, 'utf8');
  const cache = cacheFile(bundle, name);
  let cachedData;
  if (cache) {
    try {
      cachedData = fs.readFileSync(cache.file);
    } catch {
      cachedData = undefined;
    }
  }
  const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData });
  // Code compiled by vm.Script has no loader for import(): the supervisor loads
  // its handler modules through this one (see @sandlock/dispatch, loader.ts).
  globalThis[Symbol.for('sandlock.importModule')] = (specifier) => import(specifier);
  if (cache && (cachedData === undefined || script.cachedDataRejected)) {
    // Written once this process has compiled what it runs: the supervisor
    // never exits normally (it ends as its workload did), so not at exit but
    // when it is ready or done, whichever it says first.
    globalThis[Symbol.for('sandlock.oci.saveCodeCache')] = () => {
      globalThis[Symbol.for('sandlock.oci.saveCodeCache')] = undefined;
      try {
        const temporary = `${cache.file}.${process.pid}.tmp`;
        fs.writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
        fs.renameSync(temporary, cache.file);
        for (const entry of fs.readdirSync(cache.dir)) {
          if (entry.startsWith(cache.prefix) && path.join(cache.dir, entry) !== cache.file) {
            fs.rmSync(path.join(cache.dir, entry), { force: true });
          }
        }
      } catch {
        // A read-only or full disk: the next run compiles again.
      }
    };
    process.once('exit', () => globalThis[Symbol.for('sandlock.oci.saveCodeCache')]?.());
  }
  const compiled = script.runInThisContext();
  const module_ = { exports: {} };
  compiled.call(
    module_.exports,
    module_.exports,
    Module.createRequire(bundle),
    module_,
    bundle,
    path.dirname(bundle),
  );
};
