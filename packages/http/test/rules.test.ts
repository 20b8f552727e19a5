import { describe, expect, it } from 'vitest';
import { HttpRules } from '../src/index.js';

const rules = new HttpRules({
  httpAllow: [
    'GET api.example.com/repos/**',
    'GET api.example.com/users/*',
    'POST api.example.com/upload',
    '* *.cdn.example.com',
    'GET [::1]:8080/x/*',
  ],
  httpDeny: ['* api.example.com/repos/secret/**', 'GET api.example.com/repos/*/admin'],
  httpAuth: [],
});

function decide(method: string, host: string, target: string, port = 443) {
  const decision = rules.decide({ method, host, port, target });
  return decision.allowed ? 'allow' : decision.reason;
}

describe('the decision for a request', () => {
  it.each([
    ['GET', 'api.example.com', '/repos', 'allow'],
    ['GET', 'api.example.com', '/repos/a/b/c?q=1', 'allow'],
    ['get', 'api.example.com', '/repos/a', 'allow'],
    ['GET', 'api.example.com', '/users/bob', 'allow'],
    ['GET', 'api.example.com', '/users/bob/keys', 'allowed by no --http-allow rule'],
    ['GET', 'api.example.com', '/users', 'allowed by no --http-allow rule'],
    ['POST', 'api.example.com', '/repos/a', 'allowed by no --http-allow rule'],
    ['POST', 'api.example.com', '/upload/', 'allow'],
    ['GET', 'other.example.com', '/repos/a', 'allowed by no --http-allow rule'],
    ['DELETE', 'img.cdn.example.com', '/anything', 'allow'],
    ['GET', 'cdn.example.com', '/anything', 'allowed by no --http-allow rule'],
    ['GET', '::1', '/x/y', 'allowed by no --http-allow rule'],
  ])('%s %s%s: %s', (method, host, target, expected) => {
    expect(decide(method, host, target)).toBe(expected);
  });

  it('checks rule ports against the port dialled', () => {
    expect(decide('GET', '::1', '/x/y', 8080)).toBe('allow');
  });

  it('denies first, and on any reading of the path', () => {
    const denied = "denied by --http-deny '* api.example.com/repos/secret/**'";
    expect(decide('GET', 'api.example.com', '/repos/secret/x')).toBe(denied);
    expect(decide('GET', 'api.example.com', '/repos/%73ecret/x')).toBe(denied);
    expect(decide('GET', 'api.example.com', '/repos/x/../secret/key')).toBe(denied);
    expect(decide('GET', 'api.example.com', '/repos/x/..;/secret/key')).toBe(denied);
    expect(decide('GET', 'api.example.com', '/repos/x/..%2Fsecret/key')).toBe(denied);
    expect(decide('GET', 'api.example.com', '/repos/x//admin')).toBe(
      "denied by --http-deny 'GET api.example.com/repos/*/admin'",
    );
  });

  it('allows only when every reading is allowed', () => {
    // Read with %2F as a separator, this is /users/bob/keys, which no rule allows.
    expect(decide('GET', 'api.example.com', '/users/bob%2Fkeys')).toBe(
      'the path read as /users/bob/keys is allowed by no --http-allow rule',
    );
    // Read with %2F inside a segment, `..` removes bob%2Fkeys: /users, which no rule allows.
    expect(decide('GET', 'api.example.com', '/users/bob%2fkeys/..')).toBe(
      'the path read as /users is allowed by no --http-allow rule',
    );
    // Under /repos/** every reading stays beneath /repos.
    expect(decide('GET', 'api.example.com', '/repos/a%2Fb;x=1')).toBe('allow');
    // Encoded traversal out of an allowed prefix.
    expect(decide('GET', 'api.example.com', '/repos/%2e%2e/users/bob/keys')).toBe(
      'allowed by no --http-allow rule',
    );
  });

  it('says when a connection needs its requests seen', () => {
    expect(rules.needsRequests('api.example.com', 443)).toBe(true);
    expect(rules.needsRequests('img.cdn.example.com', 443)).toBe(false);
    expect(rules.allowsNothingAt('elsewhere.example.org', 443)).toBe(true);
    const open = new HttpRules({ httpAllow: [], httpDeny: ['* bad.example.com'], httpAuth: [] });
    expect(open.needsRequests('good.example.com', 443)).toBe(false);
    expect(open.deniesHost('bad.example.com', 443)?.text).toBe('* bad.example.com/**');
    expect(open.decide({ method: 'GET', host: 'x', port: 80, target: '/' }).allowed).toBe(true);
  });
});
