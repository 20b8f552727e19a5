import { describe, expect, it } from 'vitest';
import {
  applyFlag,
  hostMatches,
  PolicyDraft,
  PolicyError,
  parseHttpAuth,
  parseHttpRule,
  parseNetRule,
  parsePolicy,
  policyFlags,
  whereOf,
} from '../src/index.js';

function problemsOf(...argv: [string, string][]): string[] {
  const draft = new PolicyDraft();
  for (const [name, value] of argv) {
    applyFlag(draft, policyFlags().find((f) => f.long === name)!, value);
  }
  try {
    draft.resolve();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return (error as PolicyError).problems.map((p) => `${whereOf(p)}: ${p.message}`);
  }
  return [];
}

describe('wildcard names in network rules', () => {
  it('takes *.NAME apart as a host matched by name, and matches names beneath it only', () => {
    expect(parseNetRule('*.NPMjs.org.:443')).toEqual({
      protocols: ['tcp', 'udp'],
      host: '*.npmjs.org',
      network: null,
      ports: [{ from: 443, to: 443 }],
    });
    expect(hostMatches('*.npmjs.org', 'registry.npmjs.org')).toBe(true);
    expect(hostMatches('*.npmjs.org', 'a.b.npmjs.org')).toBe(true);
    expect(hostMatches('*.npmjs.org', 'npmjs.org')).toBe(false);
    expect(hostMatches('*.npmjs.org', 'evilnpmjs.org')).toBe(false);
    expect(parseNetRule('*.*.org')).toBe(
      "'*.*.org' is not a host name, *.name, an address, a CIDR or *",
    );
    expect(parseNetRule('a.*.org')).toBe(
      "'a.*.org' is not a host name, *.name, an address, a CIDR or *",
    );
  });
});

describe('HTTP rules', () => {
  it("take 'METHOD HOST[:PORT][/PATH]' apart", () => {
    expect(parseHttpRule('get api.Example.com/v1/**')).toEqual({
      method: 'GET',
      host: 'api.example.com',
      port: null,
      path: '/v1/**',
    });
    expect(parseHttpRule('*  *.example.com:8443')).toEqual({
      method: '*',
      host: '*.example.com',
      port: 8443,
      path: '/**',
    });
    expect(parseHttpRule('POST [::1]:8080/%7euser/a%2fb/')).toEqual({
      method: 'POST',
      host: '::1',
      port: 8080,
      path: '/~user/a%2Fb',
    });
    expect(parseHttpRule('GET 10.0.0.1/x')).toMatchObject({ host: '10.0.0.1', path: '/x' });
    expect(parseHttpRule('DELETE * ')).toMatchObject({ host: '*', path: '/**' });
  });

  it('say what is wrong', () => {
    expect(parseHttpRule('example.com')).toBe(
      "expected 'METHOD HOST/PATH' (e.g. 'GET api.example.com/v1/**')",
    );
    expect(parseHttpRule('GET http://example.com/')).toBe(
      "'http://example.com/': write the host without a scheme",
    );
    expect(parseHttpRule('G*T example.com')).toBe("'G*T': a method is a name or *");
    expect(parseHttpRule('GET ex_ample..com/')).toBe(
      "'ex_ample..com' is not a host name, *.name, an IP address or *",
    );
    expect(parseHttpRule('GET example.com/a/../b')).toBe("a rule path has no '.' or '..' segments");
    expect(parseHttpRule('GET example.com/a//b')).toBe("a rule path has no '//'");
    expect(parseHttpRule('GET example.com/a**')).toBe(
      "'**' is a whole segment (/a/**/b), use '*' within a segment",
    );
    expect(parseHttpRule('GET example.com/a?b=1')).toBe('a rule path has no query or fragment');
    expect(parseHttpRule('GET example.com/%zz')).toBe("'%zz' is not a percent-escape");
    expect(parseHttpRule('GET example.com:0/')).toBe('port 0 is not from 1 to 65535');
    expect(parseHttpRule('GET a.com/x b')).toBe("unexpected 'b' after the host and path");
  });

  it('--http-auth: a rule, a scheme and a credential name', () => {
    expect(parseHttpAuth('GET api.example.com bearer GH')).toEqual({
      rule: { method: 'GET', host: 'api.example.com', port: null, path: '/**' },
      scheme: { kind: 'bearer' },
      credential: 'GH',
    });
    expect(parseHttpAuth('* x.com/** header:X-Api-Key K')).toMatchObject({
      scheme: { kind: 'header', name: 'X-Api-Key' },
    });
    expect(parseHttpAuth('* x.com header:Host K')).toBe("the proxy sets 'Host' itself");
    expect(parseHttpAuth('* x.com digest K')).toBe("'digest' is not bearer, basic or header:NAME");
    expect(parseHttpAuth('x.com bearer K')).toMatch(/^expected 'METHOD HOST\/PATH SCHEME NAME'/);
  });

  it('problems name the flag and what was expected', () => {
    expect(
      problemsOf(
        ['http-allow', 'GET'],
        ['http-deny', 'GET x.com/%2'],
        ['credential', 'GH=vault:gh'],
        ['http-auth', 'GET api.github.com bearer NOPE'],
        ['http-ca', '/etc/hostname'],
      ),
    ).toEqual([
      "--http-allow: expected 'METHOD HOST/PATH' (e.g. 'GET api.example.com/v1/**'), in 'GET'",
      "--http-deny: '%2' is not a percent-escape, in 'GET x.com/%2'",
      '--credential: expected env:VARIABLE or file:PATH, got "vault:gh"',
      '--http-ca: needs httpKey too (a CA certificate and its private key)',
      "--http-auth: no credential 'NOPE' (define it with --credential NAME=env:VARIABLE or NAME=file:PATH)",
    ]);
    expect(
      problemsOf(['credential', 'GH=env:GITHUB_TOKEN'], ['http-auth', 'GET a.com bearer GH']),
    ).toEqual([]);
    expect(() =>
      parsePolicy({ httpAuth: ['GET a.com bearer GH'], credentials: { KEY: 'env:K' } }),
    ).toThrow("httpAuth[0]: no credential 'GH' (credentials: KEY)");
    expect(() => parsePolicy({ httpKey: '/etc/hostname' })).toThrow(
      'httpKey: needs httpCa too (a CA certificate and its private key)',
    );
  });
});
