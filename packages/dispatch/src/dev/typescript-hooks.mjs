// Module hooks for running the TypeScript sources without a build (vitest,
// and `node --import <this folder>/register.mjs script.ts` in tests). Not
// used from dist/. Mirrors the workspace's vitest aliases: `@sandlock/<pkg>`
// imported from a .ts file resolves to packages/<pkg>/src/index.ts,
// `@sandlock/<pkg>/<entry>` to packages/<pkg>/src/<entry>.ts, and a relative
// `./x.js` that does not exist to `./x.ts`.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const packagesDir = new URL('../../../', import.meta.url);
let typescript;

export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL;
  if (parent?.startsWith('file:') && parent.endsWith('.ts')) {
    const workspace = /^@sandlock\/([^/]+)(?:\/([\w-]+))?$/.exec(specifier);
    if (workspace) {
      const url = new URL(`${workspace[1]}/src/${workspace[2] ?? 'index'}.ts`, packagesDir);
      if (existsSync(url)) return { url: url.href, shortCircuit: true };
    }
    if (/^\.\.?\//.test(specifier) && specifier.endsWith('.js')) {
      const url = new URL(specifier, parent);
      const source = new URL(`${specifier.slice(0, -3)}.ts`, parent);
      if (!existsSync(url) && existsSync(source)) return { url: source.href, shortCircuit: true };
    }
  }
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  typescript ??= (await import('typescript')).default;
  const fileName = fileURLToPath(url);
  const { outputText } = typescript.transpileModule(await readFile(fileName, 'utf8'), {
    fileName,
    compilerOptions: {
      module: typescript.ModuleKind.ESNext,
      target: typescript.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
      inlineSources: true,
    },
  });
  return { format: 'module', source: outputText, shortCircuit: true };
}
