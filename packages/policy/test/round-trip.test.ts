import { afterAll, describe, expect, it } from 'vitest';
import {
  applyFlag,
  FIELD_NAMES,
  FIELDS,
  PolicyBuilder,
  PolicyDraft,
  parsePolicy,
  policyFlags,
  profileDraft,
  profileText,
} from '../src/index.js';
import { EXCLUDED_FROM_WHOLE, removeSampleFiles, SAMPLES, wholeProfile } from './samples.js';

afterAll(removeSampleFiles);

const FLAGS = policyFlags();

/** The flags as the CLI applies them: each name (and its value) in order. */
function fromFlags(argv: readonly string[], draft = new PolicyDraft()): PolicyDraft {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const flag = FLAGS.find((f) => arg === `--${f.long}` || (f.short && arg === `-${f.short}`));
    if (!flag) throw new Error(`no flag ${arg}`);
    applyFlag(draft, flag, flag.value === undefined ? undefined : argv[++i]);
  }
  return draft;
}

function fromBuilder(calls: [string, ...unknown[]][]) {
  const builder = new PolicyBuilder((draft) => draft.resolve()) as unknown as Record<
    string,
    (...args: unknown[]) => unknown
  > & { build(): unknown };
  for (const [method, ...args] of calls) builder[method]!(...args);
  return builder.build();
}

describe('every field of the table', () => {
  it('has a sample, a flag, a profile key, a doc sentence and a valid default', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...FIELD_NAMES].sort());
    for (const name of FIELD_NAMES) {
      const spec = FIELDS[name];
      expect(spec.flags.length, name).toBeGreaterThan(0);
      expect(spec.doc, name).toMatch(/^[A-Z].*\.$/);
      expect(spec.profile.key, name).toMatch(/^[a-z_]+$/);
    }
    expect(parsePolicy({})).toEqual(new PolicyDraft().resolve());
  });

  it.each(FIELD_NAMES)('%s round-trips through builder, flags, profile and JSON', (name) => {
    const sample = SAMPLES[name];
    const names = [name, ...(sample.alongside ?? [])];
    const viaJson = parsePolicy(Object.fromEntries(names.map((n) => [n, SAMPLES[n].json])));
    expect(viaJson[name]).toEqual(sample.json);
    expect(fromBuilder(names.flatMap((n) => SAMPLES[n].builder))).toEqual(viaJson);
    expect(fromFlags(names.flatMap((n) => SAMPLES[n].flags)).resolve()).toEqual(viaJson);
    const toml = sample.alongside === undefined ? sample.toml : wholeProfile(names);
    expect(profileDraft(toml, 'sample.toml').resolve()).toEqual(viaJson);
    expect(parsePolicy(JSON.parse(JSON.stringify(viaJson)))).toEqual(viaJson);
  });

  it('all at once: a profile with every section, then every flag over it', () => {
    const text = wholeProfile();
    const fromProfile = profileDraft(text, 'all.toml').resolve();
    const whole = FIELD_NAMES.filter((name) => !EXCLUDED_FROM_WHOLE.includes(name));
    const json = Object.fromEntries(whole.map((name) => [name, SAMPLES[name].json]));
    expect(fromProfile).toEqual(parsePolicy(json));
    const both = fromFlags(
      whole.flatMap((name) => SAMPLES[name].flags),
      profileDraft(text, 'all.toml'),
    ).resolve();
    // Lists and variables are extended by the flags, single values replaced.
    expect(both.fsRead).toEqual(['/usr', '/etc', '/usr', '/etc']);
    expect(both.maxMemory).toBe(64 * 1024 * 1024);
    expect(both.env).toEqual({ A: '1', B: 'x=y' });
  });
});

describe('profileText', () => {
  it.each(FIELD_NAMES)('%s: the policy written as a profile reads back the same', (name) => {
    const names = [name, ...(SAMPLES[name].alongside ?? [])];
    const policy = parsePolicy(Object.fromEntries(names.map((n) => [n, SAMPLES[n].json])));
    expect(profileDraft(profileText(policy), 'written.toml').resolve()).toEqual(policy);
  });

  it('leaves out the defaults, and writes strings TOML cannot hold raw', () => {
    expect(profileText(parsePolicy({}))).toBe('');
    const policy = parsePolicy({ env: { 'A B': 'x\u007f"\n' }, hostname: 'box' });
    const text = profileText(policy);
    expect(text).toContain('[environment]\nvars = { "A B" = "x\\u007F\\"\\n" }');
    expect(profileDraft(text, 'written.toml').resolve()).toEqual(policy);
  });
});
