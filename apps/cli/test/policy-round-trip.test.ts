import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIELD_NAMES } from '@sandlock/policy';
import { Sandbox } from 'sandlock';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EXCLUDED_FROM_WHOLE,
  removeSampleFiles,
  SAMPLES,
  scratch,
  wholeProfile,
} from '../../../packages/policy/test/samples.js';
import { sandlock } from './helpers.js';

afterAll(removeSampleFiles);

/** What `sandlock policy` prints for these arguments, parsed. */
function cliPolicy(args: string[]): unknown {
  const result = sandlock(['policy', ...args]);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout);
}

describe('every field of the policy table, through the library and the CLI', () => {
  // netAllow and netDeny do not go together: the whole policy has the first.
  const whole = FIELD_NAMES.filter((name) => !EXCLUDED_FROM_WHOLE.includes(name));
  const json = Object.fromEntries(whole.map((name) => [name, SAMPLES[name].json]));
  const expected = JSON.parse(JSON.stringify(Sandbox.fromPolicy(json).policy));

  it('Sandbox.builder(), Sandbox.fromPolicy(JSON) and Sandbox.fromProfile agree, field by field', () => {
    for (const name of FIELD_NAMES) {
      // Some fields need others beside them (httpCa and httpKey).
      const names = [name, ...(SAMPLES[name].alongside ?? [])];
      const builder = Sandbox.builder() as unknown as Record<
        string,
        (...args: unknown[]) => unknown
      >;
      for (const [method, ...args] of names.flatMap((n) => SAMPLES[n].builder)) {
        builder[method]!(...args);
      }
      const built = (builder as unknown as { build(): Sandbox }).build().policy;
      const fromJson = Sandbox.fromPolicy(
        Object.fromEntries(names.map((n) => [n, SAMPLES[n].json])),
      ).policy;
      expect(built, name).toEqual(fromJson);
      const toml = names.length === 1 ? SAMPLES[name].toml : wholeProfile(names);
      expect(Sandbox.fromProfile(toml).policy, name).toEqual(fromJson);
      expect(Sandbox.fromPolicy(JSON.parse(JSON.stringify(fromJson))).policy, name).toEqual(
        fromJson,
      );
    }
  });

  it('sandlock policy with every flag, and with a profile of every key, prints that policy', () => {
    expect(cliPolicy(whole.flatMap((name) => SAMPLES[name].flags))).toEqual(expected);
    const profile = join(scratch, 'every-field.toml');
    writeFileSync(profile, wholeProfile());
    expect(cliPolicy(['-p', profile])).toEqual(expected);
    expect(cliPolicy([])).toEqual(JSON.parse(JSON.stringify(Sandbox.builder().build().policy)));
  });
});
