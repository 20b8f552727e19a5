import type { PolicyDraft } from './draft.js';
import type { FlagSpec } from './field.js';
import { FIELD_NAMES, type FieldName, fieldSpec } from './fields.js';

/** A command-line flag that sets a policy field. */
export interface PolicyFlag extends FlagSpec {
  readonly field: FieldName;
  /** As problems name it: `-m/--max-memory`. */
  readonly shown: string;
}

/** Every policy flag, in table order. */
export function policyFlags(): PolicyFlag[] {
  return FIELD_NAMES.flatMap((field) =>
    fieldSpec(field).flags.map((flag) => ({
      ...flag,
      field,
      shown: `${flag.short ? `-${flag.short}/` : ''}--${flag.long}`,
    })),
  );
}

/**
 * Adds one use of `flag` to the draft: a switch sets its value, a valued
 * flag's text is read as the field's kind reads text (`0,2-3` for CPUs,
 * `KEY=VALUE` for variables). Later flags replace scalars and extend lists.
 */
export function applyFlag(draft: PolicyDraft, flag: PolicyFlag, text?: string): void {
  const { kind } = fieldSpec(flag.field);
  if (flag.value === undefined) {
    draft.add(flag.field, flag.sets ?? true, { kind: 'flag', flag: flag.shown, text: '' });
    return;
  }
  const given = text ?? '';
  const value = kind.fromText ? kind.fromText(given) : given;
  draft.add(flag.field, value, { kind: 'flag', flag: flag.shown, text: given });
}
