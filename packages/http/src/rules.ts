// The HTTP rules of a policy, compiled, and the decision for a request.
import {
  type HttpAuth,
  type HttpRule,
  hostMatches,
  httpRuleText,
  type Policy,
  parseHttpAuth,
  parseHttpRule,
} from '@sandlock/policy';
import { BadTarget, pathReadings } from './path.js';

/** A rule ready to match, with the flag and text it came from (for 403 bodies and onDenied). */
export interface CompiledRule extends HttpRule {
  readonly flag: '--http-allow' | '--http-deny' | '--http-auth';
  /** The rule as written, normalized (`GET api.example.com/v1/**`). */
  readonly text: string;
  /** The path as segment matchers: a RegExp per segment, or `**`. */
  readonly segments: readonly (RegExp | '**')[];
}

function compilePath(path: string): (RegExp | '**')[] {
  if (path === '/') return [];
  return path
    .split('/')
    .slice(1)
    .map((segment) =>
      segment === '**'
        ? '**'
        : new RegExp(
            `^${segment
              .split('*')
              .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
              .join('[^/]*')}$`,
          ),
    );
}

export function compileRule(rule: HttpRule, flag: CompiledRule['flag']): CompiledRule {
  return { ...rule, flag, text: httpRuleText(rule), segments: compilePath(rule.path) };
}

function segmentsMatch(
  pattern: readonly (RegExp | '**')[],
  segments: readonly string[],
  at = 0,
  from = 0,
): boolean {
  if (at === pattern.length) return from === segments.length;
  const here = pattern[at]!;
  if (here === '**') {
    for (let next = from; next <= segments.length; next++) {
      if (segmentsMatch(pattern, segments, at + 1, next)) return true;
    }
    return false;
  }
  return (
    from < segments.length &&
    here.test(segments[from]!) &&
    segmentsMatch(pattern, segments, at + 1, from + 1)
  );
}

/** Whether a normalized path (one reading) matches the rule's path pattern. */
export function pathMatches(rule: CompiledRule, path: string): boolean {
  const segments = path === '/' ? [] : path.split('/').slice(1);
  return segmentsMatch(rule.segments, segments);
}

/** The rule is about this host and port (its method and path aside). */
export function ruleCovers(rule: HttpRule, host: string, port: number): boolean {
  return hostMatches(rule.host, host) && (rule.port === null || rule.port === port);
}

/** A request as the rules see it. */
export interface RequestFacts {
  readonly method: string;
  /** Lower case, without port or trailing dot; an IPv6 address without brackets. */
  readonly host: string;
  readonly port: number;
  /** The request-target as sent (origin form). */
  readonly target: string;
}

export type Decision =
  | { readonly allowed: true; readonly rule: CompiledRule | null }
  | { readonly allowed: false; readonly rule: CompiledRule | null; readonly reason: string };

/** The HTTP rules and credential rules of a sandbox, compiled once. */
export class HttpRules {
  readonly allow: readonly CompiledRule[];
  readonly deny: readonly CompiledRule[];
  readonly auth: readonly (HttpAuth & { readonly compiled: CompiledRule })[];

  constructor(policy: Pick<Policy, 'httpAllow' | 'httpDeny'> & Partial<Pick<Policy, 'httpAuth'>>) {
    const parse = (text: string) => {
      const rule = parseHttpRule(text);
      if (typeof rule === 'string') throw new TypeError(`sandlock: unchecked HTTP rule '${text}'`);
      return rule;
    };
    this.allow = policy.httpAllow.map((text) => compileRule(parse(text), '--http-allow'));
    this.deny = policy.httpDeny.map((text) => compileRule(parse(text), '--http-deny'));
    this.auth = (policy.httpAuth ?? []).map((text) => {
      const auth = parseHttpAuth(text);
      if (typeof auth === 'string')
        throw new TypeError(`sandlock: unchecked --http-auth '${text}'`);
      return { ...auth, compiled: compileRule(auth.rule, '--http-auth') };
    });
  }

  get any(): boolean {
    return this.allow.length > 0 || this.deny.length > 0 || this.auth.length > 0;
  }

  /** Whether `rule` matches the method and all (`every`) or any of the path readings. */
  private static matches(
    rule: CompiledRule,
    facts: RequestFacts,
    readings: readonly string[],
    every: boolean,
  ): boolean {
    if (rule.method !== '*' && rule.method !== facts.method.toUpperCase()) return false;
    if (!ruleCovers(rule, facts.host, facts.port)) return false;
    return every
      ? readings.every((path) => pathMatches(rule, path))
      : readings.some((path) => pathMatches(rule, path));
  }

  /**
   * Deny rules first (any reading of the path matching denies); then, when
   * there are allow rules, every reading must be matched by one.
   */
  decide(facts: RequestFacts): Decision {
    let readings: string[];
    try {
      readings = pathReadings(facts.target);
    } catch (error) {
      if (!(error instanceof BadTarget)) throw error;
      return { allowed: false, rule: null, reason: error.message };
    }
    const denied = this.deny.find((rule) => HttpRules.matches(rule, facts, readings, false));
    if (denied !== undefined) {
      return { allowed: false, rule: denied, reason: `denied by ${denied.flag} '${denied.text}'` };
    }
    if (this.allow.length === 0) return { allowed: true, rule: null };
    let last: CompiledRule | null = null;
    for (const path of readings) {
      const rule = this.allow.find((candidate) =>
        HttpRules.matches(candidate, facts, [path], true),
      );
      if (rule === undefined) {
        return {
          allowed: false,
          rule: null,
          reason:
            readings.length > 1
              ? `the path read as ${path} is allowed by no --http-allow rule`
              : 'allowed by no --http-allow rule',
        };
      }
      last = rule;
    }
    return { allowed: true, rule: last };
  }

  /** Whether a rule (allow, deny or credential) can be about a request to `port`. */
  mentionsPort(port: number): boolean {
    return [...this.allow, ...this.deny, ...this.auth.map((auth) => auth.compiled)].some(
      (rule) => rule.port === null || rule.port === port,
    );
  }

  /** A rule that refuses every request to this host and port: the connection is refused at once. */
  deniesHost(host: string, port: number): CompiledRule | null {
    const whole = this.deny.find(
      (rule) => rule.method === '*' && rule.path === '/**' && ruleCovers(rule, host, port),
    );
    if (whole !== undefined) return whole;
    return null;
  }

  /** With allow rules, none is about this host and port: nothing can be allowed there. */
  allowsNothingAt(host: string, port: number): boolean {
    return this.allow.length > 0 && !this.allow.some((rule) => ruleCovers(rule, host, port));
  }

  /**
   * Whether requests to this host and port must be seen one by one (HTTPS
   * intercepted): a rule about it has a method or a path, or a credential is
   * added there. A host that only whole-host rules name is decided by name.
   */
  needsRequests(host: string, port: number): boolean {
    const whole = (rule: HttpRule) => rule.method === '*' && rule.path === '/**';
    if (this.auth.some((auth) => ruleCovers(auth.rule, host, port))) return true;
    if (this.deny.some((rule) => !whole(rule) && ruleCovers(rule, host, port))) return true;
    if (this.allow.length === 0) return false;
    return !this.allow.some((rule) => whole(rule) && ruleCovers(rule, host, port));
  }

  /** The credential entries for an allowed request: the first per header. */
  authFor(facts: RequestFacts): (HttpAuth & { readonly compiled: CompiledRule })[] {
    let readings: string[];
    try {
      readings = pathReadings(facts.target);
    } catch {
      return [];
    }
    const seen = new Set<string>();
    const out: (HttpAuth & { readonly compiled: CompiledRule })[] = [];
    for (const auth of this.auth) {
      if (!HttpRules.matches(auth.compiled, facts, readings, true)) continue;
      const header =
        auth.scheme.kind === 'header' ? auth.scheme.name.toLowerCase() : 'authorization';
      if (seen.has(header)) continue;
      seen.add(header);
      out.push(auth);
    }
    return out;
  }
}
