#!/usr/bin/env node
'use strict';
// Starts the bundled CLI (dist/main.cjs) through V8's code cache. Node 20 has
// no compile cache for modules, and compiling the bundle and the functions a
// run calls costs about a third of a `sandlock run` (docs/benchmarks.md).
// The cache lives in a directory private to the user; anything unexpected
// there (or no such directory) means running without it.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');
const os = require('node:os');

const bundle = path.join(__dirname, '..', 'dist', 'main.cjs');
const source = fs.readFileSync(bundle, 'utf8');

function cacheFile() {
  try {
    const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
    const dir = path.join(base, 'sandlock');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const owner = fs.statSync(dir);
    if (owner.uid !== process.getuid() || (owner.mode & 0o022) !== 0) return undefined;
    // V8 checks only the source length, so the key names this exact file.
    const stat = fs.statSync(bundle);
    const key = `${process.version}-${process.arch}-${stat.ino}-${stat.size}-${stat.mtimeMs}`;
    return path.join(dir, `cli-code-cache-${key}`);
  } catch {
    return undefined;
  }
}

const cache = cacheFile();
let cachedData;
if (cache) {
  try {
    cachedData = fs.readFileSync(cache);
  } catch {
    cachedData = undefined;
  }
}
const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData });
// Code compiled by vm.Script has no loader for import(): the supervisor loads
// its handler modules through this one (see @sandlock/dispatch, loader.ts).
globalThis[Symbol.for('sandlock.importModule')] = (specifier) => import(specifier);
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

if (cache && (cachedData === undefined || script.cachedDataRejected)) {
  // After the run, the cache also holds every function this run compiled.
  process.once('exit', () => {
    try {
      const temporary = `${cache}.${process.pid}.tmp`;
      fs.writeFileSync(temporary, script.createCachedData(), { mode: 0o600 });
      fs.renameSync(temporary, cache);
      const dir = path.dirname(cache);
      for (const name of fs.readdirSync(dir)) {
        if (name.startsWith('cli-code-cache-') && path.join(dir, name) !== cache) {
          fs.rmSync(path.join(dir, name), { force: true });
        }
      }
    } catch {
      // A read-only or full disk: the next run compiles again.
    }
  });
}
