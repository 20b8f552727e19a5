#!/usr/bin/env node
// Generates packages/sys/src/syscalls/<arch>.generated.ts from the kernel UAPI headers Debian
// installs, plus common-since-451.tsv for the syscalls those (Linux 6.1) headers predate.
//
//   node tools/gen-syscalls/generate.mjs [--out-dir DIR]   write the tables (default: in place)
//   node tools/gen-syscalls/generate.mjs --missing         list missing prerequisites, if any

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mergeCommonRows, readCommonTable } from './common-table.mjs';
import { collectMacros } from './preprocess.mjs';
import { renderTableModule } from './render.mjs';
import { syscallNumbersFromMacros } from './resolve.mjs';

const TOOL_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(TOOL_DIR, '../..');
const DEFAULT_OUT_DIR = join(REPO_ROOT, 'packages/sys/src/syscalls');
const COMMON_TABLE = join(TOOL_DIR, 'common-since-451.tsv');
const CPP = 'cpp';

const ARCHES = [
  {
    arch: 'x86_64',
    exportName: 'X86_64_SYSCALLS',
    debianPackage: 'linux-libc-dev',
    includeDir: '/usr/include/x86_64-linux-gnu',
    header: 'asm/unistd_64.h',
    archMacro: '__x86_64__',
    requiredHeaders: ['asm/unistd_64.h'],
  },
  {
    // asm/unistd.h only sets the __ARCH_WANT_* switches and includes asm-generic/unistd.h,
    // whose numbers depend on them and on __BITS_PER_LONG: hence the preprocessor.
    arch: 'aarch64',
    exportName: 'AARCH64_SYSCALLS',
    debianPackage: 'linux-libc-dev-arm64-cross',
    includeDir: '/usr/aarch64-linux-gnu/include',
    header: 'asm/unistd.h',
    archMacro: '__aarch64__',
    requiredHeaders: ['asm/unistd.h', 'asm-generic/unistd.h', 'asm/bitsperlong.h'],
  },
];

function missingPrerequisites() {
  const missing = [];
  const cpp = spawnSync(CPP, ['--version'], { encoding: 'utf8' });
  if (cpp.error || cpp.status !== 0) {
    missing.push(`the C preprocessor '${CPP}' (Debian package cpp)`);
  }
  for (const spec of ARCHES) {
    for (const header of spec.requiredHeaders) {
      const path = join(spec.includeDir, header);
      if (!existsSync(path)) missing.push(`${path} (Debian package ${spec.debianPackage})`);
    }
  }
  return missing;
}

function generate(outDir) {
  const rows = readCommonTable(
    COMMON_TABLE,
    ARCHES.map((spec) => spec.arch),
  );
  mkdirSync(outDir, { recursive: true });
  for (const spec of ARCHES) {
    const macros = collectMacros({ ...spec, cpp: CPP });
    const fromHeader = syscallNumbersFromMacros(macros);
    const table = mergeCommonRows(fromHeader, rows, spec.arch);
    const source = renderTableModule({
      exportName: spec.exportName,
      arch: spec.arch,
      sources: [join(spec.includeDir, spec.header), relative(REPO_ROOT, COMMON_TABLE)],
      table,
    });
    const file = join(outDir, `${spec.arch}.generated.ts`);
    writeFileSync(file, source);
    console.log(`${relative(process.cwd(), file)}: ${table.size} syscalls`);
  }
}

function main() {
  const { values } = parseArgs({
    options: {
      'out-dir': { type: 'string', default: DEFAULT_OUT_DIR },
      missing: { type: 'boolean', default: false },
    },
  });
  const missing = missingPrerequisites();
  if (values.missing) {
    for (const item of missing) console.log(item);
    return;
  }
  if (missing.length > 0) {
    console.error(`cannot generate syscall tables, missing:\n  ${missing.join('\n  ')}`);
    process.exitCode = 1;
    return;
  }
  generate(resolve(values['out-dir']));
}

main();
