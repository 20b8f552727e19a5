import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PolicyDraft } from './draft.js';
import { FIELD_NAMES, type FieldName, fieldSpec } from './fields.js';
import type { Origin } from './origin.js';
import { nearest } from './suggest.js';
import { type Located, parseToml, plainValue, TomlError } from './toml.js';

/** A profile's sections and their keys, from the table. */
export function profileSections(): Map<string, Map<string, FieldName>> {
  const sections = new Map<string, Map<string, FieldName>>();
  for (const name of FIELD_NAMES) {
    const { section, key } = fieldSpec(name).profile;
    if (!sections.has(section)) sections.set(section, new Map());
    sections.get(section)!.set(key, name);
  }
  return sections;
}

/**
 * Reads a TOML profile into a draft: each value keeps its file, line, column
 * and key, so that a problem points at it. Unknown sections and keys, and
 * values outside a section, are problems (with a suggestion where a known
 * name is close); TOML that does not parse is one problem at its position.
 */
export function profileDraft(text: string, file: string, draft = new PolicyDraft()): PolicyDraft {
  const position = (node: Located, key: string): Origin => ({
    kind: 'profile',
    file,
    line: node.line,
    column: node.column,
    key,
  });
  /** Where the key was written: for problems with the key itself. */
  const keyPosition = (node: Located, key: string): Origin => position(node.key ?? node, key);
  let document: Located;
  try {
    document = parseToml(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    return draft.problem({
      field: 'profile',
      message: `not valid TOML: ${error.message}`,
      origin: { kind: 'profile', file, line: error.line, column: error.column, key: '' },
    });
  }
  const sections = profileSections();
  for (const [sectionName, section] of document.entries!) {
    const keys = sections.get(sectionName);
    if (!section.entries) {
      const owner = [...sections].find(([, inner]) => inner.has(sectionName))?.[0];
      draft.problem({
        field: 'profile',
        message: `a key outside any section${owner ? `; did you mean '${sectionName}' under [${owner}]?` : ''}`,
        origin: keyPosition(section, sectionName),
      });
      continue;
    }
    if (keys === undefined) {
      const hint = nearest(sectionName, [...sections.keys()]);
      draft.problem({
        field: 'profile',
        message: `unknown section${hint ? `; did you mean [${hint}]?` : ''} (sections: ${[...sections.keys()].map((name) => `[${name}]`).join(' ')})`,
        origin: keyPosition(section, sectionName),
      });
      continue;
    }
    for (const [key, node] of section.entries) {
      const name = keys.get(key);
      const dotted = `${sectionName}.${key}`;
      if (name === undefined) {
        const hint = nearest(key, [...keys.keys()]);
        draft.problem({
          field: 'profile',
          message: `unknown key${hint ? `; did you mean '${hint}'?` : ''} (in [${sectionName}]: ${[...keys.keys()].join(', ')})`,
          origin: keyPosition(node, dotted),
        });
        continue;
      }
      if (fieldSpec(name).combine === 'append' && node.items) {
        // Each item with its own position.
        if (node.items.length === 0) draft.add(name, [], position(node, dotted));
        for (const item of node.items) draft.add(name, [plainValue(item)], position(item, dotted));
      } else {
        draft.add(name, plainValue(node), position(node, dotted));
      }
    }
  }
  return draft;
}

/** Where named profiles live: `$XDG_CONFIG_HOME/sandlock/profiles`, else `~/.config/sandlock/profiles`. */
export function profileDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME?.startsWith('/')
    ? env.XDG_CONFIG_HOME
    : join(homedir(), '.config');
  return join(base, 'sandlock', 'profiles');
}

/** A profile name's error, or null when it names a file in the profile directory. */
export function badProfileName(name: string): string | null {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) || name.endsWith('.toml')) {
    return `expected a profile name (letters, digits, '_', '-', '.'; no '/' or .toml), got '${name}'`;
  }
  return null;
}

/** The file of the named profile (the name is checked with {@link badProfileName} first). */
export function profilePath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(profileDir(env), `${name}.toml`);
}

/** The names of the profiles in the profile directory, sorted; none when it does not exist. */
export function listProfiles(env: NodeJS.ProcessEnv = process.env): string[] {
  let names: string[];
  try {
    names = readdirSync(profileDir(env));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .filter((name) => name.endsWith('.toml') && badProfileName(name.slice(0, -5)) === null)
    .map((name) => name.slice(0, -5))
    .sort();
}

/** Reads a profile file into a draft (see {@link profileDraft}). */
export function readProfile(file: string, draft?: PolicyDraft): PolicyDraft {
  return profileDraft(readFileSync(file, 'utf8'), file, draft);
}
