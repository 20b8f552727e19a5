// What a connection's first bytes are: anything a server could read as an
// HTTP request is HTTP (the proxy checks it); only the rest is judged by
// its address.
import { describe, expect, it } from 'vitest';
import { classifyOpening, MAX_OPENING } from '../src/opening.js';

const of = (text: string | Buffer) =>
  classifyOpening(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);

describe('classifyOpening', () => {
  it.each([
    ['a TLS record', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]), 'tls'],
    ['a request line', 'GET / HTTP/1.1\r\n', 'http'],
    ['an extension method', 'FROB /x HTTP/1.1\r\n', 'http'],
    ['leading empty lines (RFC 9112 §2.2)', '\r\n\r\nGET /secret HTTP/1.1\r\n', 'http'],
    ['a tab for the space', 'GET\t/secret\tHTTP/1.1\r\n', 'http'],
    ['HTTP/ in lower case', 'GET /secret http/1.1\r\n', 'http'],
    ['a target with a space', 'GET /a b HTTP/1.1\r\n', 'http'],
    ['HTTP/0.9', 'GET /secret\r\n', 'http'],
    ['HTTP/2 prior knowledge', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'http'],
    ['an SSH banner with a comment', 'SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n', 'other'],
    ['an SSH banner', 'SSH-2.0-OpenSSH_9.2p1\r\n', 'other'],
    ['a Redis command', '*1\r\n$4\r\nPING\r\n', 'other'],
    ['an inline Redis command', 'PING\r\n', 'other'],
    ['SMTP-like text', 'EHLO client.example\r\n', 'other'],
    ['a PostgreSQL startup message', Buffer.from([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), 'other'],
    ['a token then a colon', 'key:value\n', 'other'],
    ['half a request line', 'GET /sec', 'more'],
    ['half a method', 'GE', 'more'],
    ['empty lines alone', '\r\n', 'more'],
    ['a first line past the limit', `GET /${'a'.repeat(MAX_OPENING)}`, 'http'],
  ])('%s', (_what, bytes, kind) => {
    expect(of(bytes)).toBe(kind);
  });
});
