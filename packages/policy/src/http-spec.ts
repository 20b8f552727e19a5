import { isAbsolute } from 'node:path';
import type { At, Kind } from './kinds.js';
import { parseHostPattern } from './net-spec.js';

/**
 * An HTTP rule (`--http-allow`, `--http-deny`, the rule of `--http-auth`)
 * taken apart: `METHOD HOST[:PORT][/PATH]`.
 */
export interface HttpRule {
  /** Upper case; `*` for any method. */
  readonly method: string;
  /** Lower case, without a trailing dot: a name, `*.name` (names beneath it), `*`, or an IP address. */
  readonly host: string;
  /** null: any port. */
  readonly port: number | null;
  /**
   * The path pattern, starting with `/`: `*` matches within one segment,
   * a `**` segment any number of segments (none included). `/**` without a path.
   */
  readonly path: string;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * A rule's path as requests are matched (packages/http normalizes request
 * paths the same way): escapes of unreserved characters decoded, other
 * escapes in upper case. Dot segments, empty segments, a query or a
 * fragment are refused: a rule says what it means.
 */
function parseRulePath(text: string): string | { problem: string } {
  if (/[?#]/.test(text)) return { problem: 'a rule path has no query or fragment' };
  if (/[\s\\]/.test(text)) return { problem: 'a rule path has no spaces or backslashes' };
  let out = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (char !== '%') {
      out += char;
      continue;
    }
    const hex = text.slice(index + 1, index + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { problem: `'%${hex}' is not a percent-escape` };
    const decoded = String.fromCharCode(Number.parseInt(hex, 16));
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    index += 2;
  }
  const segments = out.split('/').slice(1);
  // A trailing slash is no segment of its own (requests are matched the same way).
  if (segments.length > 1 && segments.at(-1) === '') segments.pop();
  for (const segment of segments) {
    if (segment === '' && segments.length > 1) return { problem: "a rule path has no '//'" };
    if (segment === '.' || segment === '..') {
      return { problem: "a rule path has no '.' or '..' segments" };
    }
    if (segment.includes('**') && segment !== '**') {
      return { problem: "'**' is a whole segment (/a/**/b), use '*' within a segment" };
    }
  }
  return `/${segments.join('/')}`;
}

/** A rule's text taken apart, or the reason it is not one. */
export function parseHttpRule(given: string): HttpRule | string {
  const text = given.trim();
  const space = /\s+/.exec(text);
  if (space === null) return "expected 'METHOD HOST/PATH' (e.g. 'GET api.example.com/v1/**')";
  const method = text.slice(0, space.index);
  const where = text.slice(space.index + space[0].length);
  if (/\s/.test(where))
    return `unexpected '${where.slice(where.search(/\s/)).trim()}' after the host and path`;
  if (!METHOD.test(method)) return `'${method}' is not a method (GET, POST, … or *)`;
  if (method.includes('*') && method !== '*') return `'${method}': a method is a name or *`;
  if (/^[a-z]+:\/\//i.test(where)) return `'${where}': write the host without a scheme`;
  let hostPart: string;
  let pathPart: string;
  if (where.startsWith('[')) {
    const end = where.indexOf(']');
    if (end < 0) return "'[' without ']'";
    const slash = where.indexOf('/', end);
    hostPart = slash < 0 ? where : where.slice(0, slash);
    pathPart = slash < 0 ? '/**' : where.slice(slash);
  } else {
    const slash = where.indexOf('/');
    hostPart = slash < 0 ? where : where.slice(0, slash);
    pathPart = slash < 0 ? '/**' : where.slice(slash);
  }
  let port: number | null = null;
  const withPort = /^(.*):(\d{1,5})$/.exec(hostPart);
  if (withPort && (hostPart.startsWith('[') || !withPort[1]!.includes(':'))) {
    port = Number(withPort[2]);
    if (port < 1 || port > 65535) return `port ${port} is not from 1 to 65535`;
    hostPart = withPort[1]!;
  }
  if (hostPart.startsWith('[')) {
    if (!hostPart.endsWith(']')) return `'${hostPart}' is not a bracketed IPv6 address`;
    hostPart = hostPart.slice(1, -1);
  }
  const host = hostPart === '*' ? '*' : parseHostPattern(hostPart);
  if (host === null) {
    return `'${hostPart}' is not a host name, *.name, an IP address or *`;
  }
  const path = parseRulePath(pathPart);
  if (typeof path !== 'string') return path.problem;
  return { method: method.toUpperCase(), host, port, path };
}

/** A rule as text with its parts normalized (`GET api.example.com/v1/**`). */
export function httpRuleText(rule: HttpRule): string {
  const host = rule.host.includes(':') ? `[${rule.host}]` : rule.host;
  return `${rule.method} ${host}${rule.port === null ? '' : `:${rule.port}`}${rule.path}`;
}

/** How `--http-auth` adds a credential to a request. */
export type AuthScheme =
  | { readonly kind: 'bearer' }
  | { readonly kind: 'basic' }
  | { readonly kind: 'header'; readonly name: string };

/** `--http-auth 'RULE SCHEME NAME'` taken apart. */
export interface HttpAuth {
  readonly rule: HttpRule;
  readonly scheme: AuthScheme;
  /** The credential's name (a key of `credentials`). */
  readonly credential: string;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
export const CREDENTIAL_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** Headers the proxy owns: a credential may not be put in them. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
  'cookie2',
]);

export function parseHttpAuth(given: string): HttpAuth | string {
  const words = given.trim().split(/\s+/);
  if (words.length !== 4) {
    return "expected 'METHOD HOST/PATH SCHEME NAME', SCHEME bearer, basic or header:NAME (e.g. 'GET api.example.com bearer TOKEN')";
  }
  const [method, where, schemeText, credential] = words as [string, string, string, string];
  const rule = parseHttpRule(`${method} ${where}`);
  if (typeof rule === 'string') return rule;
  let scheme: AuthScheme;
  const lower = schemeText.toLowerCase();
  if (lower === 'bearer' || lower === 'basic') scheme = { kind: lower };
  else if (lower.startsWith('header:')) {
    const name = schemeText.slice('header:'.length);
    if (!TOKEN.test(name)) return `'${name}' is not a header name`;
    if (RESERVED_HEADERS.has(name.toLowerCase()) || name.startsWith(':')) {
      return `the proxy sets '${name}' itself`;
    }
    scheme = { kind: 'header', name };
  } else return `'${schemeText}' is not bearer, basic or header:NAME`;
  if (!CREDENTIAL_NAME.test(credential)) return `'${credential}' is not a credential name`;
  return { rule, scheme, credential };
}

/** Where a credential's secret is read from, when the sandbox starts. */
export type CredentialSource =
  | { readonly kind: 'env'; readonly variable: string }
  | { readonly kind: 'file'; readonly path: string };

export function parseCredentialSource(text: string): CredentialSource | string {
  if (text.startsWith('env:')) {
    const variable = text.slice(4);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) return `'${variable}' is not a variable name`;
    return { kind: 'env', variable };
  }
  if (text.startsWith('file:')) {
    const path = text.slice(5);
    if (!isAbsolute(path) || path.includes('\0')) return `'${path}' is not an absolute path`;
    return { kind: 'file', path };
  }
  return `'${text}' is not env:VARIABLE or file:PATH`;
}

function textRule<T>(
  parse: (text: string) => T | string,
  example: string,
  describe: string,
): Kind<string> {
  return {
    check(value, at: At) {
      if (typeof value !== 'string') return at.expected(example, value);
      const parsed = parse(value);
      if (typeof parsed === 'string') return at.problem(`${parsed}, in '${value}'`);
      return value.trim();
    },
    schema: { type: 'string', minLength: 1 },
    describe,
  };
}

/** An HTTP rule, kept as its text; {@link parseHttpRule} takes it apart. */
export const httpRuleSpec: Kind<string> = textRule(
  parseHttpRule,
  "a rule like 'GET api.example.com/v1/**'",
  'METHOD HOST[:PORT][/PATH]: METHOD a name or *, HOST a name, *.name, an IP address or *, PATH with * (within a segment) and ** (any segments); no path is /**',
);

/** An `--http-auth` entry, kept as its text; {@link parseHttpAuth} takes it apart. */
export const httpAuthSpec: Kind<string> = textRule(
  parseHttpAuth,
  "an entry like 'GET api.example.com/** bearer TOKEN'",
  'METHOD HOST[/PATH] SCHEME NAME: an HTTP rule, then bearer, basic (the secret is USER:PASSWORD) or header:HEADER, then the credential NAME',
);

/** Credentials by name: where each secret is read from (`env:VARIABLE` or `file:PATH`). */
export const credentialSources: Kind<Record<string, string>> = {
  check(value, at) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return at.expected(
        at.origin.kind === 'flag' ? 'NAME=env:VARIABLE or NAME=file:PATH' : 'an object of sources',
        value,
      );
    }
    const out: Record<string, string> = {};
    let bad = false;
    for (const [name, source] of Object.entries(value)) {
      if (!CREDENTIAL_NAME.test(name)) {
        bad = true;
        at.problem(`'${name}' is not a credential name (letters, digits, '_', '.', '-')`);
        continue;
      }
      const parsed =
        typeof source === 'string'
          ? parseCredentialSource(source)
          : 'not env:VARIABLE or file:PATH';
      if (typeof parsed === 'string') {
        bad = true;
        at.inner(`.${name}`).problem(
          `expected env:VARIABLE or file:PATH, got ${JSON.stringify(source)}`,
        );
        continue;
      }
      out[name] = source as string;
    }
    return bad ? undefined : out;
  },
  fromText(text) {
    const eq = text.indexOf('=');
    return eq <= 0 ? text : { [text.slice(0, eq)]: text.slice(eq + 1) };
  },
  schema: {
    type: 'object',
    additionalProperties: { type: 'string', pattern: '^(env:|file:/)' },
  },
  describe:
    'credentials by name, each env:VARIABLE or file:PATH (read by the supervisor when the sandbox starts)',
};
