import { PolicyDraft } from './draft.js';
import type { Setter } from './field.js';
import { FIELD_NAMES, type Fields, fieldSpec } from './fields.js';

type SetterOf<K extends keyof Fields> = Fields[K]['setter'];
type ArgsOf<S> = S extends Setter<infer A, infer _N> ? A : never;
type NameOf<K extends string, S> =
  S extends Setter<infer _A, infer N> ? ([N] extends [never] ? K : N) : K;

/** One chainable setter per field of the table, named as its entry says (the field's name by default). */
export type PolicySetters<Self> = {
  [K in keyof Fields as NameOf<K, SetterOf<K>>]: (...args: ArgsOf<SetterOf<K>>) => Self;
};

/**
 * Chainable setters for a policy, made from the table (fields.ts). Setters
 * never throw: `build()` checks everything at once and reports every problem
 * in one PolicyError. List setters append; switches take `enabled = true`.
 */
export interface PolicyBuilder<Built> extends PolicySetters<PolicyBuilder<Built>> {
  /** Validates the whole policy; throws a PolicyError listing every problem. */
  build(): Built;
}

class BuilderBase<Built> {
  readonly draft = new PolicyDraft();

  constructor(private readonly finish: (draft: PolicyDraft) => Built) {}

  build(): Built {
    return this.finish(this.draft.clone());
  }
}

for (const name of FIELD_NAMES) {
  const { setter } = fieldSpec(name);
  const method = function (this: BuilderBase<unknown>, ...args: unknown[]) {
    switch (setter.mode) {
      case 'set':
        this.draft.add(name, args[0]);
        break;
      case 'append':
        this.draft.add(name, args);
        break;
      case 'switch':
        this.draft.add(name, args[0] ?? true);
        break;
      case 'custom':
        this.draft.replace(name, setter.apply!(this.draft.current(name), args));
        break;
    }
    return this;
  };
  Object.defineProperty(BuilderBase.prototype, setter.name ?? name, {
    value: method,
    writable: true,
  });
}

/** `new PolicyBuilder(finish)`: `finish` gets the draft on `build()`, e.g. `(draft) => draft.resolve()`. */
export const PolicyBuilder = BuilderBase as unknown as new <Built>(
  finish: (draft: PolicyDraft) => Built,
) => PolicyBuilder<Built>;
