import { spawnSync } from 'node:child_process';

/**
 * Runs the C preprocessor over `#include <header>` and returns every object-like macro the
 * header ends up defining, name -> replacement text.
 *
 * `-undef -nostdinc` keeps the host compiler's own macros and include paths out, so the result
 * depends only on `includeDir` and the architecture macro we define ourselves.
 */
export function collectMacros({ includeDir, header, archMacro, cpp = 'cpp' }) {
  const args = ['-undef', '-nostdinc', '-dM', '-E', `-D${archMacro}`, `-I${includeDir}`, '-'];
  const result = spawnSync(cpp, args, { input: `#include <${header}>\n`, encoding: 'utf8' });
  if (result.error) {
    throw new Error(`cannot run ${cpp}: ${result.error.message}`);
  }
  if (result.status !== 0) {
    throw new Error(`${cpp} failed on <${header}> in ${includeDir}:\n${result.stderr}`);
  }
  return parseMacroDefinitions(result.stdout);
}

/** Parses `cpp -dM` output. Function-like macros (`#define F(x) ...`) are skipped. */
export function parseMacroDefinitions(text) {
  const macros = new Map();
  for (const line of text.split('\n')) {
    const match = /^#define ([A-Za-z_]\w*)(?:\s+(.*))?$/.exec(line);
    if (match) {
      macros.set(match[1], (match[2] ?? '').trim());
    }
  }
  return macros;
}
