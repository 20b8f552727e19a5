import { describe, expect, it } from 'vitest';
import { BadTarget, pathReadings } from '../src/index.js';

// What the rules see of a request-target: every reading a server may give
// it. A request is allowed only when each reading is (rules.test.ts).
const READINGS: [target: string, readings: string[]][] = [
  ['/', ['/']],
  ['/a/b?x=/../../secret', ['/a/b']],
  ['/a/b/', ['/a/b']],
  ['/%61%62c/%7Euser', ['/abc/~user']],
  ['/allowed/%2e%2e/secret', ['/secret']],
  ['/allowed/%2E%2E/%2e/secret', ['/secret']],
  ['/allowed/../../../secret', ['/secret']],
  ['/allowed/./x', ['/allowed/x']],
  ['/a//b', ['/a/b', '/a//b']],
  ['/a/x//../b', ['/a/x/b', '/a/b']],
  ['/allowed/..;/secret', ['/allowed/..;/secret', '/secret']],
  ['/allowed;jsessionid=1/x', ['/allowed;jsessionid=1/x', '/allowed/x']],
  ['/allowed/..%2fsecret', ['/allowed/..%2Fsecret', '/secret']],
  ['/allowed/..%5csecret', ['/allowed/..%5Csecret', '/secret']],
  ['/allowed/..\\secret', ['/allowed/..%5Csecret', '/secret']],
  ['/a%2Fb', ['/a%2Fb', '/a/b']],
  ['/%20x/%C3%A9', ['/%20x/%C3%A9']],
];

describe('request paths', () => {
  it.each(READINGS)('%s reads as %j', (target, readings) => {
    expect(pathReadings(target).sort()).toEqual([...readings].sort());
  });

  it.each([
    ['*', 'the request-target is not a path'],
    ['http://x/', 'the request-target is not a path'],
    ['//evil.example/secret', "the path starts with '//'"],
    ['/a%2', "'%2' is not a percent-escape"],
    ['/a%zz', "'%zz' is not a percent-escape"],
    ['/a\u0000b', 'the path has a character no path has'],
    ['/a#frag', 'the path has a character no path has'],
  ])('refuses %j: %s', (target, message) => {
    expect(() => pathReadings(target)).toThrow(new BadTarget(message));
  });
});
