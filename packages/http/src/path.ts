// A request-target as the rules see it: every reading a server may give it.

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Why a request-target is refused before any rule is looked at. */
export class BadTarget extends Error {
  override readonly name = 'BadTarget';
}

/**
 * The path of a request-target (origin form, `/a/b?q`), escapes of
 * unreserved characters decoded (RFC 3986 §6.2.2.2: equivalent) and the
 * others in upper case (§6.2.2.1); the query dropped.
 *
 * @throws BadTarget for what no reading makes safe: a target that is not a
 *   path, a malformed escape, `//` at the start (a network-path reference
 *   to URL parsers: `new URL('//evil/x', base)` is host `evil`), control
 *   characters, a fragment.
 */
export function decodedPath(target: string): string {
  if (!target.startsWith('/')) throw new BadTarget('the request-target is not a path');
  const query = target.indexOf('?');
  const raw = query < 0 ? target : target.slice(0, query);
  if (raw.startsWith('//')) throw new BadTarget("the path starts with '//'");
  if (/[\u0000-\u0020\u007f-\uffff#]/.test(raw))
    throw new BadTarget('the path has a character no path has');
  let out = '';
  for (let index = 0; index < raw.length; index++) {
    const char = raw[index]!;
    if (char !== '%') {
      out += char;
      continue;
    }
    const hex = raw.slice(index + 1, index + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new BadTarget(`'%${hex}' is not a percent-escape`);
    const decoded = String.fromCharCode(Number.parseInt(hex, 16));
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    index += 2;
  }
  return out;
}

interface Reading {
  /** `%2F`, `%5C` and `\` separate segments (servers that decode before routing; Windows). */
  readonly slashes: boolean;
  /** `;params` are cut from every segment (servlet containers: `/a/..;/b` is `/b`). */
  readonly params: boolean;
  /** Empty segments are kept (servers that do not merge `//`). */
  readonly empties: boolean;
}

const READINGS: readonly Reading[] = [false, true].flatMap((slashes) =>
  [false, true].flatMap((params) => [false, true].map((empties) => ({ slashes, params, empties }))),
);

function read(decoded: string, reading: Reading): string {
  let text = decoded;
  if (reading.slashes) text = text.replace(/%2F|%5C|\\/g, '/');
  const segments = text.split('/').slice(1);
  const out: string[] = [];
  segments.forEach((given, index) => {
    let segment = reading.params ? given.replace(/;.*$/, '') : given;
    // %2E is decoded already; a segment of dots after cutting parameters is a dot segment.
    if (segment === '.') return;
    if (segment === '..') {
      out.pop();
      return;
    }
    // A trailing slash ends the last segment; it is no segment of its own.
    if (segment === '' && (!reading.empties || index === segments.length - 1)) return;
    segment = segment.replace(/\\/g, '%5C');
    out.push(segment);
  });
  return `/${out.join('/')}`;
}

/**
 * Every path a server may take `target` for, after {@link decodedPath}:
 * dot segments removed (RFC 3986 §5.2.4; `..` never above the root), and
 * each combination of three readings servers disagree on: `%2F`/`%5C`/`\`
 * as separators or not, `;parameters` cut from segments or not, `//` merged
 * or not. A request is allowed only when every reading is, and denied when
 * any reading is. Without those characters there is one reading.
 */
export function pathReadings(target: string): string[] {
  const decoded = decodedPath(target);
  return [...new Set(READINGS.map((reading) => read(decoded, reading)))];
}
