import { type AnyField, FIELD_NAMES, type FieldName, fieldSpec, type Policy } from './fields.js';
import { parseHttpAuth } from './http-spec.js';
import { At, list, nullable, path } from './kinds.js';
import { FROM_VALUE, type Origin, PolicyError, type PolicyProblem, shown } from './origin.js';

interface Given {
  readonly value: unknown;
  readonly origin: Origin;
}

/**
 * A policy being put together from several sources (a profile, then flags;
 * builder calls; a policy object), each value kept with where it came from.
 * Nothing is checked until {@link PolicyDraft.resolve}, which reports every
 * problem at once.
 */
export class PolicyDraft {
  private readonly given = new Map<FieldName, Given[]>();
  private readonly early: PolicyProblem[] = [];

  /**
   * Adds a value for `name`, combined with earlier ones as the field's entry
   * says (for a single value, the last wins; every one is checked).
   */
  add(name: FieldName, value: unknown, origin: Origin = FROM_VALUE): this {
    const list = this.given.get(name) ?? [];
    list.push({ value, origin });
    this.given.set(name, list);
    return this;
  }

  /** The value the builder's setters see: the combination so far, unchecked. */
  current(name: FieldName): unknown {
    const given = this.given.get(name);
    if (given === undefined) return undefined;
    const spec = fieldSpec(name);
    if (spec.combine === 'replace') return given.at(-1)!.value;
    if (spec.combine === 'append')
      return given.flatMap(({ value }) => (Array.isArray(value) ? value : [value]));
    return Object.assign({}, ...given.map(({ value }) => value));
  }

  /** Replaces everything given for `name` by one value (the builder's custom setters). */
  replace(name: FieldName, value: unknown, origin: Origin = FROM_VALUE): this {
    this.given.set(name, [{ value, origin }]);
    return this;
  }

  /** A problem found before resolving (an unknown key, a flag without its value). */
  problem(problem: PolicyProblem): this {
    this.early.push(problem);
    return this;
  }

  /** A copy: later additions to either do not reach the other. */
  clone(): PolicyDraft {
    const copy = new PolicyDraft();
    for (const [name, given] of this.given) copy.given.set(name, [...given]);
    copy.early.push(...this.early);
    return copy;
  }

  /** httpCa and httpKey come together; httpAuth names credentials that exist. */
  private crossCheckHttp(out: Record<string, unknown>, problems: PolicyProblem[]): void {
    const originOf = (name: FieldName) => this.given.get(name)?.at(-1)?.origin ?? FROM_VALUE;
    if ((out.httpCa === null) !== (out.httpKey === null)) {
      const [given, missing] = out.httpCa === null ? ['httpKey', 'httpCa'] : ['httpCa', 'httpKey'];
      new At(given, originOf(given as FieldName), problems).problem(
        `needs ${missing} too (a CA certificate and its private key)`,
      );
    }
    const credentials = (out.credentials ?? {}) as Record<string, string>;
    const auth = out.httpAuth as string[] | undefined;
    for (const [index, text] of (auth ?? []).entries()) {
      const parsed = parseHttpAuth(text);
      if (typeof parsed === 'string' || credentials[parsed.credential] !== undefined) continue;
      const known = Object.keys(credentials);
      const origin = originOf('httpAuth');
      const define =
        origin.kind === 'flag'
          ? '--credential NAME=env:VARIABLE or NAME=file:PATH'
          : 'credentials: { NAME: "env:VARIABLE" or "file:PATH" }';
      new At(`httpAuth[${index}]`, origin, problems).problem(
        `no credential '${parsed.credential}' (${known.length === 0 ? `define it with ${define}` : `credentials: ${known.join(', ')}`})`,
      );
    }
  }

  /** What only a workdir's layer uses, given without a workdir: refused rather than ignored. */
  private crossCheckWorkdir(out: Record<string, unknown>, problems: PolicyProblem[]): void {
    for (const name of ['onExit', 'onError', 'maxDisk', 'fsStorage'] as const) {
      if (out[name] === fieldSpec(name).default) continue;
      const origin = this.given.get(name)?.at(-1)?.origin ?? FROM_VALUE;
      new At(name, origin, problems).problem("needs workdir (it applies to the workdir's layer)");
    }
  }

  /** Every field checked: the frozen policy, or a {@link PolicyError} listing every problem. */
  resolve(): Policy {
    const problems: PolicyProblem[] = [...this.early];
    const out: Record<string, unknown> = {};
    for (const name of FIELD_NAMES) {
      const spec = fieldSpec(name);
      const given = this.given.get(name);
      out[name] =
        given === undefined
          ? structuredClone(spec.default)
          : resolveField(name, inRoot(name, spec, this.given.has('chroot')), given, problems);
    }
    const exclusive: [FieldName, FieldName, string][] = [
      ['netAllow', 'netDeny', 'netAllow (what may be reached) or netDeny (what may not)'],
      [
        'netAllowBind',
        'netDenyBind',
        'netAllowBind (what may be bound) or netDenyBind (what may not)',
      ],
      [
        'netBind',
        'netDenyBind',
        'netBind (TCP ports that may be bound) or netDenyBind (ports that may not)',
      ],
    ];
    for (const [one, other, which] of exclusive) {
      if ((out[one] as unknown[]).length === 0 || (out[other] as unknown[]).length === 0) continue;
      const origin = this.given.get(other)!.find(({ value }) => value !== null)!.origin;
      new At(other, origin, problems).problem(`a policy has ${which}, not both`);
    }
    this.crossCheckHttp(out, problems);
    if ((out.fsMount as string[]).length > 0 && out.chroot === null) {
      const origin = this.given.get('fsMount')?.at(-1)?.origin ?? FROM_VALUE;
      new At('fsMount', origin, problems).problem('needs chroot (mounts are shown inside a root)');
    }
    if (out.workdir === null) this.crossCheckWorkdir(out, problems);
    if (problems.length > 0) throw new PolicyError(problems);
    return deepFreeze(out) as Policy;
  }
}

/**
 * With a chroot, the read and write paths and the cwd are the sandbox's,
 * inside the root: absolute here, found inside the root when the sandbox
 * starts.
 */
function inRoot(name: FieldName, spec: AnyField, chroot: boolean): AnyField {
  if (!chroot) return spec;
  if (name === 'cwd') return { ...spec, kind: nullable(path) } as AnyField;
  if (name !== 'fsRead' && name !== 'fsWrite') return spec;
  return { ...spec, kind: list(path) } as AnyField;
}

function resolveField(
  name: string,
  spec: AnyField,
  given: Given[],
  problems: PolicyProblem[],
): unknown {
  if (spec.combine === 'replace') {
    // The last value wins, and every value given is checked: a mistake in
    // one that was replaced is still reported.
    let checked: unknown;
    for (const { value, origin } of given)
      checked = spec.kind.check(value, new At(name, origin, problems));
    return checked;
  }
  if (spec.combine === 'merge') {
    const merged: Record<string, unknown> = {};
    for (const { value, origin } of given) {
      const checked = spec.kind.check(value, new At(name, origin, problems));
      if (checked !== undefined && checked !== null) Object.assign(merged, checked);
    }
    return merged;
  }
  // Lists: each source's items checked with its origin, indexes counted across sources.
  const items: unknown[] = [];
  let index = 0;
  let allNull = true;
  for (const { value, origin } of given) {
    const at = new At(name, origin, problems);
    if (value === null) continue;
    allNull = false;
    if (!Array.isArray(value)) {
      at.expected('a list', value);
      continue;
    }
    const checked = spec.kind.check(value, new IndexedAt(name, origin, problems, index));
    index += value.length;
    if (Array.isArray(checked)) items.push(...checked);
  }
  return allNull ? structuredClone(spec.default) : items;
}

/** Item problems of a later source numbered after the items of earlier ones. */
class IndexedAt extends At {
  constructor(
    field: string,
    origin: Origin,
    problems: PolicyProblem[],
    private readonly offset: number,
  ) {
    super(field, origin, problems);
  }

  override inner(suffix: string): At {
    const match = /^\[(\d+)\]/.exec(suffix);
    if (!match || this.offset === 0) return super.inner(suffix);
    const index = Number(match[1]) + this.offset;
    return super.inner(`[${index}]${suffix.slice(match[0].length)}`);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * Checks every field of `input` (a partial policy: missing fields take their
 * defaults) and returns the frozen policy, or throws one {@link PolicyError}
 * naming every problem.
 */
export function parsePolicy(input: unknown): Policy {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new PolicyError([
      { field: 'policy', message: `expected an object, got ${shown(input, FROM_VALUE)}` },
    ]);
  }
  const draft = new PolicyDraft();
  for (const [key, value] of Object.entries(input)) {
    if (!(FIELD_NAMES as string[]).includes(key)) {
      draft.problem({ field: key, message: 'unknown field' });
    } else if (value !== undefined) {
      draft.add(key as FieldName, value);
    }
  }
  return draft.resolve();
}
