#!/usr/bin/env node
// Re-assembles the exec stub from packages/sys/src/stub/asm/*.S with GNU
// binutils and prints the machine code, or rewrites packages/sys/src/stub/code.ts.
//
//   node tools/stub/assemble.mjs                 print size and hex per arch
//   node tools/stub/assemble.mjs --json          {"x86_64": {"size", "hex"} | {"missing"} | {"error"}, ...}
//   node tools/stub/assemble.mjs --arch aarch64  only this arch (with either form above)
//   node tools/stub/assemble.mjs --write         regenerate code.ts (needs every arch's tools)
//
// The bytes come from `objcopy -O binary -j .text`; `objdump -d` only
// supplies the per-instruction comments in code.ts. The code uses absolute
// immediates and PC-relative branches inside .text, so the bytes do not depend
// on where they are loaded; an object file with relocations is refused.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const stubDir = join(repoRoot, 'packages/sys/src/stub');
const codeFile = join(stubDir, 'code.ts');

const ARCHES = {
  x86_64: {
    source: 'asm/x86_64.S',
    triple: 'x86_64-linux-gnu',
    nodeArch: 'x64',
    asFlags: ['--64'],
    objdumpFlags: ['-M', 'intel'],
    objdumpComment: /\s+#.*$/,
    package: 'binutils',
  },
  aarch64: {
    source: 'asm/aarch64.S',
    triple: 'aarch64-linux-gnu',
    nodeArch: 'arm64',
    asFlags: [],
    objdumpFlags: [],
    objdumpComment: /\s+\/\/.*$/, // `#` starts an immediate here, not a comment
    package: 'binutils-aarch64-linux-gnu',
  },
};

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed:\n${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

/** A binutils program is not installed: callers may skip rather than fail. */
class MissingToolError extends Error {}

function works(command) {
  const result = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

/** The binutils program `tool` for `arch`: the cross-prefixed one, or the plain one on a native host. */
function findTool(arch, tool) {
  const spec = ARCHES[arch];
  const candidates = [`${spec.triple}-${tool}`];
  if (process.arch === spec.nodeArch) candidates.push(tool);
  const found = candidates.find(works);
  if (!found) {
    throw new MissingToolError(
      `${arch}: no ${tool} found (tried ${candidates.join(', ')}); install ${spec.package}`,
    );
  }
  return found;
}

/** One disassembled instruction (or data word) and the label it starts, if any. */
function disassemble(objdump, arch, object) {
  const text = run(objdump, ['-d', '--no-show-raw-insn', ...ARCHES[arch].objdumpFlags, object]);
  const lines = [];
  let label;
  for (const line of text.split('\n')) {
    const labelMatch = /^[0-9a-f]+ <(.+)>:$/.exec(line);
    if (labelMatch) {
      label = labelMatch[1];
      continue;
    }
    const insn = /^\s*([0-9a-f]+):\s+(.*)$/.exec(line);
    if (!insn) continue;
    const asm = insn[2]
      .replace(ARCHES[arch].objdumpComment, '') // objdump's own comments
      .replace(/\s*<[^>]*\+0x[0-9a-f]+>/, '') // "<symbol+offset>": often a nearby .equ
      .replace(/\s+/g, ' ')
      .trim();
    lines.push({ offset: Number.parseInt(insn[1], 16), asm, label });
    label = undefined;
  }
  return lines;
}

/** Assembles one arch: { bytes: Buffer, listing: [{ offset, asm, label, bytes }] }. */
export function assemble(arch) {
  const as = findTool(arch, 'as');
  const objcopy = findTool(arch, 'objcopy');
  const objdump = findTool(arch, 'objdump');
  const work = mkdtempSync(join(tmpdir(), `sandlock-stub-${arch}-`));
  try {
    const object = join(work, 'stub.o');
    const binary = join(work, 'stub.bin');
    run(as, [...ARCHES[arch].asFlags, '-o', object, join(stubDir, ARCHES[arch].source)]);
    const relocations = run(objdump, ['-r', object]);
    if (/RELOCATION RECORDS/.test(relocations)) {
      throw new Error(
        `${arch}: the object has relocations; the stub must be position-independent:\n${relocations}`,
      );
    }
    run(objcopy, ['-O', 'binary', '-j', '.text', object, binary]);
    const bytes = readFileSync(binary);
    const lines = disassemble(objdump, arch, object);
    if (lines.length === 0 || lines[0].offset !== 0) {
      throw new Error(`${arch}: objdump listing does not start at offset 0`);
    }
    const listing = lines.map((line, index) => {
      const end = index + 1 < lines.length ? lines[index + 1].offset : bytes.length;
      if (end <= line.offset || end > bytes.length) {
        throw new Error(
          `${arch}: objdump listing does not match the .text bytes at ${line.offset}`,
        );
      }
      return { ...line, bytes: bytes.subarray(line.offset, end) };
    });
    return { bytes, listing };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function renderListing(constName, source, { bytes, listing }) {
  const out = [`// ${source}: ${bytes.length} bytes`, `const ${constName} = [`];
  for (const line of listing) {
    if (line.label) out.push(`  // ${line.label}:`);
    const offset = line.offset.toString(16).padStart(3, '0');
    out.push(`  '${line.bytes.toString('hex')}', // ${offset}: ${line.asm}`);
  }
  out.push("].join('');");
  return out.join('\n');
}

function renderCodeFile(results) {
  return `// Machine code of the exec stub, one string of hex per instruction.
// GENERATED by \`node tools/stub/assemble.mjs --write\` from ./asm/x86_64.S and
// ./asm/aarch64.S: edit the assembly, then regenerate; test/stub-asm.test.ts
// checks that these bytes are what binutils makes of the sources.

import type { Arch } from '../syscalls/index.js';

${renderListing('X86_64_HEX', 'asm/x86_64.S', results.x86_64)}

${renderListing('AARCH64_HEX', 'asm/aarch64.S', results.aarch64)}

/** The stub's code (the ELF's first segment, after the headers), per architecture. */
export const STUB_CODE: Readonly<Record<Arch, Uint8Array>> = {
  x86_64: Uint8Array.from(Buffer.from(X86_64_HEX, 'hex')),
  aarch64: Uint8Array.from(Buffer.from(AARCH64_HEX, 'hex')),
};
`;
}

function main(argv) {
  const json = argv.includes('--json');
  const write = argv.includes('--write');
  const archIndex = argv.indexOf('--arch');
  const only = archIndex >= 0 ? argv[archIndex + 1] : undefined;
  if (only !== undefined && !(only in ARCHES)) {
    throw new Error(`unknown arch ${only}; known: ${Object.keys(ARCHES).join(', ')}`);
  }
  if (write && only !== undefined) throw new Error('--write regenerates every arch; drop --arch');
  const arches = only ? [only] : Object.keys(ARCHES);

  if (write) {
    const results = Object.fromEntries(arches.map((arch) => [arch, assemble(arch)]));
    writeFileSync(codeFile, renderCodeFile(results));
    for (const arch of arches) console.log(`${arch}: ${results[arch].bytes.length} bytes`);
    console.log(`wrote ${codeFile}`);
    return;
  }

  const report = {};
  for (const arch of arches) {
    try {
      const { bytes } = assemble(arch);
      report[arch] = { size: bytes.length, hex: bytes.toString('hex') };
    } catch (error) {
      // "missing": the tools are not installed; "error": the source does not assemble cleanly.
      report[arch] =
        error instanceof MissingToolError ? { missing: error.message } : { error: error.message };
    }
  }
  if (json) {
    console.log(JSON.stringify(report));
  } else {
    for (const [arch, entry] of Object.entries(report)) {
      const problem = entry.missing ?? entry.error;
      console.log(problem ? `${arch}: ${problem}` : `${arch}: ${entry.size} bytes\n${entry.hex}`);
    }
  }
  if (Object.values(report).some((entry) => entry.missing || entry.error)) process.exitCode = 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    console.error(error.message);
    process.exitCode = 1;
  }
}
