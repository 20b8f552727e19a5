import type { Arch } from '@sandlock/sys';
import type { Action } from './actions.js';
import type { ArgMatcher } from './matchers.js';

/** One rule for one syscall: when every matcher holds (an empty list always holds), `action`. */
export interface Rule {
  readonly when?: readonly ArgMatcher[];
  readonly action: Action;
}

/**
 * A whole filter as data. For each syscall name, rules in priority order: the first rule whose
 * matchers all hold decides; a syscall with no rule, or whose rules all fail, gets
 * `defaultAction`. Calls from any other ABI than `arch` (i386 `int 0x80` on x86_64, arm32 on
 * aarch64) and x32 calls on x86_64 kill the process before any rule is consulted.
 */
export interface RuleSet {
  readonly arch: Arch;
  readonly defaultAction: Action;
  readonly syscalls: ReadonlyMap<string, readonly Rule[]>;
}

/** Collects rules syscall by syscall; rules added earlier for a syscall take priority. */
export class RuleSetBuilder {
  readonly #syscalls = new Map<string, Rule[]>();

  constructor(
    readonly arch: Arch,
    readonly defaultAction: Action,
  ) {}

  add(syscall: string, ...rules: Rule[]): this {
    let list = this.#syscalls.get(syscall);
    if (list === undefined) {
      list = [];
      this.#syscalls.set(syscall, list);
    }
    list.push(...rules);
    return this;
  }

  build(): RuleSet {
    const syscalls = new Map<string, readonly Rule[]>();
    for (const [name, rules] of this.#syscalls) syscalls.set(name, Object.freeze([...rules]));
    return Object.freeze({ arch: this.arch, defaultAction: this.defaultAction, syscalls });
  }
}
