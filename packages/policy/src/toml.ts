import { createRequire } from 'node:module';
import type { AST } from 'toml-eslint-parser';

/** A TOML value with the position it was written at (1-based line and column). */
export interface Located {
  readonly line: number;
  readonly column: number;
  /** Set for scalars: strings, numbers (bigint past 2^53), booleans, dates as written. */
  value?: unknown;
  /** Set for arrays. */
  items?: Located[];
  /** Set for tables. */
  entries?: Map<string, Located>;
  /** Where the key that names it was written (set for keys and table headers). */
  key?: { readonly line: number; readonly column: number };
}

/** A TOML syntax error at a position. */
export class TomlError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

type Parser = typeof import('toml-eslint-parser');

let parser: Parser | undefined;

/** Loaded on first use: only runs that read a profile pay for it. */
function tomlParser(): Parser {
  parser ??= createRequire(import.meta.url)('toml-eslint-parser') as Parser;
  return parser;
}

function at(node: AST.TOMLNode): { line: number; column: number } {
  return { line: node.loc.start.line, column: node.loc.start.column + 1 };
}

function scalar(node: AST.TOMLValue, source: string): unknown {
  switch (node.kind) {
    case 'integer':
      return Number.isSafeInteger(node.value) ? node.value : node.bigint;
    case 'offset-date-time':
    case 'local-date-time':
    case 'local-date':
    case 'local-time':
      // As written (a space may stand for the T): the policy decides what a zone-less time means.
      return source.slice(node.range[0], node.range[1]).replace(' ', 'T');
    default:
      return node.value;
  }
}

function convert(node: AST.TOMLContentNode, source: string): Located {
  if (node.type === 'TOMLArray') {
    return { ...at(node), items: node.elements.map((element) => convert(element, source)) };
  }
  if (node.type === 'TOMLInlineTable') {
    const table: Located = { ...at(node), entries: new Map() };
    for (const pair of node.body) {
      place(table, keysOf(pair.key), convert(pair.value, source), at(pair));
    }
    return table;
  }
  return { ...at(node), value: scalar(node, source) };
}

function keysOf(key: AST.TOMLKey): string[] {
  return key.keys.map((part) => (part.type === 'TOMLBare' ? part.name : part.value));
}

/** The table at `path` below `root`, made as needed (numbers index arrays of tables). */
function tableAt(
  root: Located,
  path: readonly (string | number)[],
  where: { line: number; column: number },
): Located {
  let table = root;
  for (const step of path) {
    if (typeof step === 'number') {
      table.items ??= [];
      table.items[step] ??= { line: where.line, column: where.column, entries: new Map() };
      table = table.items[step]!;
      continue;
    }
    let next = table.entries!.get(step);
    if (next === undefined) {
      next = { line: where.line, column: where.column, entries: new Map(), key: where };
      table.entries!.set(step, next);
    }
    table = next;
  }
  return table;
}

function place(
  table: Located,
  keys: readonly string[],
  value: Located,
  key: { line: number; column: number },
): void {
  const parent = tableAt(table, keys.slice(0, -1), key);
  value.key = key;
  parent.entries!.set(keys.at(-1)!, value);
}

/** Parses TOML text into located values; throws a {@link TomlError} with its position. */
export function parseToml(source: string): Located {
  let document: AST.TOMLProgram;
  try {
    document = tomlParser().parseTOML(source);
  } catch (error) {
    const { message, lineNumber, column } = error as {
      message: string;
      lineNumber?: number;
      column?: number;
    };
    throw new TomlError(message, lineNumber ?? 1, (column ?? 0) + 1);
  }
  const root: Located = { line: 1, column: 1, entries: new Map() };
  for (const node of document.body[0]!.body) {
    if (node.type === 'TOMLKeyValue') {
      place(root, keysOf(node.key), convert(node.value, source), at(node));
      continue;
    }
    const table = tableAt(root, node.resolvedKey, at(node));
    for (const pair of node.body) {
      place(table, keysOf(pair.key), convert(pair.value, source), at(pair));
    }
  }
  return root;
}

/** The plain value: objects for tables, arrays, scalars. */
export function plainValue(node: Located): unknown {
  if (node.items) return node.items.map(plainValue);
  if (node.entries) {
    return Object.fromEntries([...node.entries].map(([key, inner]) => [key, plainValue(inner)]));
  }
  return node.value;
}
