// A wildcard rule judged by address: under netDeny it matches the addresses
// pinned for it (names beneath it the policy names, resolved at start) and
// nothing else; under netAllow nothing. By name (a connect the HTTP proxy
// takes), its ports alone.
import { type NetView, parseNetRule } from '@sandlock/policy';
import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { reaches } from '../src/rules.js';

function view(mode: NetView['mode'], rules: string[], hosts: NetView['hosts'] = {}): NetView {
  return {
    mode,
    rules: rules.map((text) => {
      const rule = parseNetRule(text);
      if (typeof rule === 'string') throw new Error(rule);
      return rule;
    }),
    hosts,
  };
}

const to = (address: string, port: number | null, protocol: 'tcp' | 'udp' = 'tcp') => ({
  protocol,
  address: ipaddr.parse(address),
  port,
});

describe('wildcard rules by address', () => {
  it('netDeny: the pinned addresses of names beneath it, any protocol; every other address passes', () => {
    const net = view('deny', ['*.internal.test'], { '*.internal.test': ['10.0.0.5'] });
    expect(reaches(net, to('10.0.0.5', 5432))).toBe(false);
    expect(reaches(net, to('10.0.0.5', 53, 'udp'))).toBe(false);
    expect(reaches(net, to('10.0.0.6', 5432))).toBe(true);
    expect(reaches(net, to('10.0.0.6', 53, 'udp'))).toBe(true);
    // No name beneath it pinned: no address is its.
    expect(reaches(view('deny', ['*.internal.test']), to('10.0.0.5', 22))).toBe(true);
    // A concrete name that did not resolve still fails closed.
    expect(reaches(view('deny', ['db.internal.test']), to('10.0.0.7', 22))).toBe(false);
  });

  it('netAllow: no address by itself; by name (to the proxy), its ports', () => {
    const net = view('allow', ['*.allowed.test:443']);
    expect(reaches(net, to('10.0.0.5', 443))).toBe(false);
    expect(reaches(net, to('10.0.0.5', 443), true)).toBe(true);
    expect(reaches(net, to('10.0.0.5', 80), true)).toBe(false);
  });
});
