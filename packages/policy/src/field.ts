import type { Kind } from './kinds.js';

/** A command-line flag of a field. */
export interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  /** The value's name in help (`SIZE`); absent for a switch. */
  readonly value?: string;
  /** A switch sets the field to this (default true). */
  readonly sets?: unknown;
  /** One line for `--help`. */
  readonly help: string;
}

/**
 * How the builder's setter changes a field. The type parameter is the
 * setter's argument list, for the builder's types.
 */
export type Setter<Args extends unknown[], N extends string = never> = {
  /** The setter's name when it is not the field's (`plugin` for `plugins`). */
  readonly name?: N;
  /** `set`: the argument; `append`: the arguments added to the list; `switch`: `enabled = true`. */
  readonly mode: 'set' | 'append' | 'switch' | 'custom';
  /** For `custom`: the new draft value from the current one and the arguments. */
  readonly apply?: (current: unknown, args: Args) => unknown;
  /** For `custom`: its parameters as the reference shows them. */
  readonly parameters?: string;
  /** Phantom: never set. */
  readonly args?: Args;
};

export function set<T>(): Setter<[value: T]> {
  return { mode: 'set' };
}
export function append<T>(): Setter<T[]> {
  return { mode: 'append' };
}
export function toggle(): Setter<[enabled?: boolean]> {
  return { mode: 'switch' };
}
export function custom<Args extends unknown[], N extends string>(
  name: N,
  parameters: string,
  apply: (current: unknown, args: Args) => unknown,
): Setter<Args, N> {
  return { name, mode: 'custom', apply, parameters };
}

/**
 * One field of the policy: everything said about it anywhere (library,
 * command line, profiles, schema, reference) is made from this.
 */
export interface FieldSpec<T, Args extends unknown[], N extends string = never> {
  /** Its values, their checks and their schema. */
  readonly kind: Kind<T>;
  readonly default: T;
  /**
   * How several values combine (builder calls, flags, a profile under flags):
   * `replace` keeps the last, `append` concatenates lists, `merge` merges
   * objects key by key.
   */
  readonly combine: 'replace' | 'append' | 'merge';
  readonly setter: Setter<Args, N>;
  readonly flags: readonly FlagSpec[];
  /** Where a profile sets it: `[section]` and `key`. */
  readonly profile: { readonly section: string; readonly key: string };
  /** One sentence for the reference and the schema. */
  readonly doc: string;
  /** More for the reference, in Markdown (e.g. the exact paths a preset grants). */
  readonly details?: string;
}

export function field<T, Args extends unknown[], N extends string = never>(
  spec: FieldSpec<T, Args, N>,
): FieldSpec<T, Args, N> {
  return spec;
}
