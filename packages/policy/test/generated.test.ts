import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { FIELD_NAMES, FIELDS, policyReference, policySchema, profileDraft } from '../src/index.js';
import { parseToml, plainValue } from '../src/toml.js';

const root = new URL('../../../', import.meta.url);
const examples = new URL('examples/profiles/', root);

function validator(form: 'profile' | 'policy') {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats.default(ajv);
  return ajv.compile(policySchema(form));
}

describe('made from the table', () => {
  it('docs/policy.md is the reference the table makes (run `pnpm gen:policy-docs` when this fails)', () => {
    const written = readFileSync(new URL('docs/policy.md', root), 'utf8');
    expect(written).toBe(policyReference());
    for (const name of FIELD_NAMES) {
      expect(written).toContain(`## ${name}\n\n${FIELDS[name].doc}`);
    }
  });

  it('the README lists exactly what --system grants', () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    expect(readme).toContain(FIELDS.system.details);
  });

  it('the example profiles are valid by the profile schema and by the loader', () => {
    const valid = validator('profile');
    const files = readdirSync(examples).filter((name) => name.endsWith('.toml'));
    expect(files.length).toBeGreaterThanOrEqual(2);
    for (const file of files) {
      const text = readFileSync(new URL(file, examples), 'utf8');
      const document = plainValue(parseToml(text));
      expect(valid(document), `${file}: ${JSON.stringify(valid.errors)}`).toBe(true);
      expect(() =>
        profileDraft(text, fileURLToPath(new URL(file, examples))).resolve(),
      ).not.toThrow();
    }
  });

  it('the profile schema refuses what the loader refuses', () => {
    const valid = validator('profile');
    for (const bad of [
      { limits: { memroy: '1G' } },
      { limit: {} },
      { limits: { memory: '1' } },
      { limits: { processes: 0 } },
      { network: { bind: [70000] } },
      { filesystem: { read: 'relative' } },
      { environment: { vars: { A: 1 } } },
      { determinism: { hostname: '' } },
    ]) {
      expect(valid(bad), JSON.stringify(bad)).toBe(false);
    }
    expect(
      valid({ limits: { memory: '1.5G', processes: 3 }, network: { bind: ['80-90', 443] } }),
    ).toBe(true);
  });

  it('the policy schema accepts every default and the JSON of a full policy', () => {
    const valid = validator('policy');
    expect(valid(profileDraft('', 'empty.toml').resolve())).toBe(true);
    const text = readFileSync(new URL('reproducible.toml', examples), 'utf8');
    const policy = JSON.parse(JSON.stringify(profileDraft(text, 'r.toml').resolve()));
    expect(valid(policy), JSON.stringify(valid.errors)).toBe(true);
    expect(valid({ ...policy, fsReed: [] })).toBe(false);
  });
});
