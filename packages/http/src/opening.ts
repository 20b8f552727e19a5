// What a connection's first bytes are: TLS, HTTP/1, or another protocol,
// told before anything is forwarded.

/** The most bytes read before the first line must have ended. */
export const MAX_OPENING = 8192;

export type Opening = 'tls' | 'http' | 'other' | 'more';

/** RFC 9110 §5.6.2 tchar: the characters of a method. */
function isTchar(byte: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) ||
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    "!#$%&'*+-.^_`|~".includes(String.fromCharCode(byte))
  );
}

const isSpace = (byte: number) => byte === 0x20 || byte === 0x09;

/**
 * The protocol the first bytes of a connection open, or `more` when they
 * cannot tell yet. Read wide, since what is not HTTP is forwarded by the
 * address rules unchecked: leading empty lines (which servers skip, RFC
 * 9112 §2.2), any method token, a tab for a space, `HTTP/` in any case,
 * and the version-less `GET path` of HTTP/0.9 all read as HTTP. A token
 * followed by neither space nor tab, or a first line without `HTTP/` after
 * its target (an SSH banner, a Redis command), is another protocol; so is
 * a first byte no request line starts with (a binary protocol).
 */
export function classifyOpening(bytes: Buffer): Opening {
  if (bytes.length > 0 && bytes[0] === 0x16) return 'tls';
  let at = 0;
  while (at < bytes.length && (bytes[at] === 0x0d || bytes[at] === 0x0a || isSpace(bytes[at]!)))
    at++;
  if (at === bytes.length) return bytes.length >= MAX_OPENING ? 'other' : 'more';
  let end = at;
  while (end < bytes.length && isTchar(bytes[end]!)) end++;
  if (end === at) return 'other';
  if (end === bytes.length) return bytes.length >= MAX_OPENING ? 'http' : 'more';
  if (!isSpace(bytes[end]!)) return 'other';
  const lineEnd = bytes.indexOf(0x0a, end);
  if (lineEnd < 0) return bytes.length >= MAX_OPENING ? 'http' : 'more';
  const rest = bytes.subarray(end, lineEnd).toString('latin1');
  if (/[ \t]HTTP\//i.test(rest)) return 'http';
  const method = bytes.subarray(at, end).toString('latin1');
  return method.toUpperCase() === 'GET' ? 'http' : 'other';
}
