/**
 * Where a value of a policy came from, so that a problem names what the user
 * wrote: a command-line flag, a key of a profile, or a field of a policy
 * object (the builder, `Sandbox.fromPolicy`).
 */
export type Origin =
  | {
      readonly kind: 'flag';
      /** The flag as help shows it: `-m/--max-memory`. */
      readonly flag: string;
      /** The text given to it. */
      readonly text: string;
    }
  | {
      readonly kind: 'profile';
      readonly file: string;
      /** 1-based. */
      readonly line: number;
      /** 1-based. */
      readonly column: number;
      /** `section.key`, e.g. `limits.memory`; empty for a syntax error. */
      readonly key: string;
    }
  | { readonly kind: 'value' };

export const FROM_VALUE: Origin = Object.freeze({ kind: 'value' });

/** One thing wrong with a policy. */
export interface PolicyProblem {
  /** The policy field, with the index or key inside it: `fsRead[2]`, `env.PATH`. */
  readonly field: string;
  /** What was expected, and what was given. */
  readonly message: string;
  /** Where the value came from, when not from a policy object. */
  readonly origin?: Origin;
}

/** How a problem is located for the user: the flag, the profile position and key, or the field. */
export function whereOf(problem: PolicyProblem): string {
  const origin = problem.origin;
  if (origin?.kind === 'flag') return origin.flag;
  if (origin?.kind === 'profile') {
    const position = `${origin.file}:${origin.line}:${origin.column}`;
    // The name inside a table (`env.A` → `environment.vars.A`); a list item
    // has a position of its own.
    const inside = /^\w+(\..+)$/.exec(problem.field)?.[1] ?? '';
    return origin.key === '' ? position : `${position}: ${origin.key}${inside}`;
  }
  return problem.field;
}

/** A policy that cannot be built; lists every problem at once. */
export class PolicyError extends Error {
  override readonly name = 'PolicyError';

  constructor(readonly problems: readonly PolicyProblem[]) {
    super(
      problems.length === 1
        ? `invalid policy: ${whereOf(problems[0]!)}: ${problems[0]!.message}`
        : `invalid policy (${problems.length} problems):\n${problems
            .map((problem) => `  ${whereOf(problem)}: ${problem.message}`)
            .join('\n')}`,
    );
  }
}

/** A value as a problem shows it: JSON-like for policy objects, as typed for flags. */
export function shown(value: unknown, origin: Origin): string {
  if (origin.kind === 'flag' && ['string', 'number', 'bigint'].includes(typeof value)) {
    return `'${String(value)}'`;
  }
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return origin.kind === 'value' ? 'an array' : 'a list';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}`;
  if (value instanceof Date) return 'a Date';
  if (typeof value === 'object') return origin.kind === 'value' ? 'an object' : 'a table';
  return origin.kind === 'value' ? `${typeof value} ${String(value)}` : String(value);
}
