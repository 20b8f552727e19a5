// A policy written back as a TOML profile: the fields that differ from their
// defaults, each under its [section] and key, so that `profileDraft` of the
// text gives the same policy.

import { PolicyDraft } from './draft.js';
import { FIELD_NAMES, type Policy } from './fields.js';
import { profileSections } from './profile.js';

const BARE_KEY = /^[A-Za-z0-9_-]+$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A TOML basic string. JSON's escapes are TOML's, but TOML also forbids
 * DEL and lone surrogates (toml.io, "String"), which JSON writes raw.
 */
function tomlString(text: string): string {
  const wellFormed = text.replace(LONE_SURROGATE, '\ufffd');
  return JSON.stringify(wellFormed).replace(/\u007f/g, '\\u007F');
}

function tomlKey(key: string): string {
  return BARE_KEY.test(key) ? key : tomlString(key);
}

/** A value as TOML (inline tables for objects); undefined for null, which TOML cannot write. */
function tomlValue(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return tomlString(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (Array.isArray(value)) {
    const items = value.map(tomlValue).filter((item) => item !== undefined);
    return `[${items.join(', ')}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>)
    .map(([key, inner]) => [key, tomlValue(inner)] as const)
    .filter(([, inner]) => inner !== undefined)
    .map(([key, inner]) => `${tomlKey(key)} = ${inner}`);
  return entries.length === 0 ? '{}' : `{ ${entries.join(', ')} }`;
}

/** The policy as a TOML profile of its fields that are not at their defaults. */
export function profileText(policy: Policy): string {
  const defaults = new PolicyDraft().resolve();
  const blocks: string[] = [];
  for (const [section, keys] of profileSections()) {
    const lines: string[] = [];
    for (const [key, name] of keys) {
      if (!FIELD_NAMES.includes(name)) continue;
      const value = policy[name];
      if (JSON.stringify(value) === JSON.stringify(defaults[name])) continue;
      const text = tomlValue(value);
      if (text !== undefined) lines.push(`${key} = ${text}`);
    }
    if (lines.length > 0) blocks.push(`[${section}]\n${lines.join('\n')}\n`);
  }
  return blocks.join('\n');
}
