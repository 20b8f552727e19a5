import { describe, expect, it } from 'vitest';
import {
  bindsOf,
  landlockBindPorts,
  mayBind,
  PolicyError,
  parseBindRule,
  parseNetRule,
  parsePolicy,
} from '../src/index.js';

describe('network rules', () => {
  it('takes HOST, IP, CIDR and * with ports and schemes apart', () => {
    expect(parseNetRule('example.com:443')).toEqual({
      protocols: ['tcp', 'udp'],
      host: 'example.com',
      network: null,
      ports: [{ from: 443, to: 443 }],
    });
    expect(parseNetRule('udp://10.0.0.0/8:53,5353')).toEqual({
      protocols: ['udp'],
      host: null,
      network: { address: '10.0.0.0', prefix: 8 },
      ports: [
        { from: 53, to: 53 },
        { from: 5353, to: 5353 },
      ],
    });
    expect(parseNetRule('tcp://[::1]:8000-8100')).toEqual({
      protocols: ['tcp'],
      host: null,
      network: { address: '::1', prefix: 128 },
      ports: [{ from: 8000, to: 8100 }],
    });
    expect(parseNetRule('[fd00::/8]')).toMatchObject({ network: { address: 'fd00::', prefix: 8 } });
    expect(parseNetRule('fd00::1')).toMatchObject({ network: { address: 'fd00::1', prefix: 128 } });
    expect(parseNetRule('icmp://*')).toEqual({
      protocols: ['icmp'],
      host: null,
      network: null,
      ports: null,
    });
    expect(parseNetRule('*:*')).toMatchObject({ network: null, ports: null });
    expect(parseNetRule('127.0.0.1')).toMatchObject({ network: { prefix: 32 }, ports: null });
  });

  it('says what is wrong with a rule', () => {
    expect(parseNetRule('ftp://example.com')).toBe("unknown scheme 'ftp://' (tcp, udp or icmp)");
    expect(parseNetRule('example.com:0')).toBe('port 0 is not from 1 to 65535');
    expect(parseNetRule('example.com:90-80')).toBe('range start 90 is above its end 80');
    expect(parseNetRule('example.com:http')).toBe("'http' is not a port, a range FROM-TO or *");
    expect(parseNetRule('10.0.0.0/33')).toBe("'10.0.0.0/33' has a prefix length out of range");
    expect(parseNetRule('300.1.1.1')).toBe("'300.1.1.1' is not an IPv4 address or CIDR");
    expect(parseNetRule('0x7f.1')).toBe(
      "'0x7f.1' is not a host name, *.name, an address, a CIDR or *",
    );
    expect(parseNetRule('icmp://10.0.0.1:7')).toBe('ICMP has no ports');
    expect(parseNetRule('[10.0.0.1]:80')).toBe("'[10.0.0.1]': brackets are for IPv6 addresses");
    expect(parseNetRule('[::1')).toBe("'[' without ']'");
  });

  it('refuses netAllow and netDeny together, and names the rule in problems', () => {
    expect(() => parsePolicy({ netAllow: ['10.0.0.1'], netDeny: ['10.0.0.2'] })).toThrow(
      'netDeny: a policy has netAllow (what may be reached) or netDeny (what may not), not both',
    );
    let error: unknown;
    try {
      parsePolicy({ netAllow: ['udp://example.com:99999'] });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PolicyError);
    expect(String(error)).toContain(
      "netAllow[0]: port 99999 is not from 1 to 65535, in 'udp://example.com:99999'",
    );
  });
});

describe('bind rules', () => {
  it('takes ports, ranges, * and a scheme apart; 0 is a port', () => {
    expect(parseBindRule('6379')).toEqual({
      protocols: ['tcp', 'udp'],
      ports: [{ from: 6379, to: 6379 }],
    });
    expect(parseBindRule('udp://0,5000-5010')).toEqual({
      protocols: ['udp'],
      ports: [
        { from: 0, to: 0 },
        { from: 5000, to: 5010 },
      ],
    });
    expect(parseBindRule('tcp://*')).toEqual({ protocols: ['tcp'], ports: null });
    expect(parseBindRule('icmp://1')).toBe("unknown scheme 'icmp://' (tcp or udp)");
    expect(parseBindRule('70000')).toBe('port 70000 is not from 0 to 65535');
    expect(parsePolicy({ netAllowBind: [8080] }).netAllowBind).toEqual(['8080']);
  });

  it('allows what the rules say, to the virtual port', () => {
    const allow = bindsOf(parsePolicy({ netAllowBind: ['udp://53'], netBind: [8080] }));
    expect(mayBind(allow, 'udp', 53)).toBe(true);
    expect(mayBind(allow, 'tcp', 53)).toBe(false);
    expect(mayBind(allow, 'tcp', 8080)).toBe(true);
    expect(mayBind(allow, 'udp', 0)).toBe(false);
    expect(allow.tcpOnBehalf).toBe(false);
    const deny = bindsOf(parsePolicy({ netDenyBind: ['tcp://22'] }));
    expect(mayBind(deny, 'tcp', 22)).toBe(false);
    expect(mayBind(deny, 'udp', 22)).toBe(true);
    expect(mayBind(deny, 'tcp', 0)).toBe(true);
    expect(deny.tcpOnBehalf).toBe(true);
    expect(mayBind(bindsOf(parsePolicy({})), 'udp', 0)).toBe(false);
  });

  it('says which TCP ports Landlock allows', () => {
    const ports = (policy: object) => landlockBindPorts(parsePolicy(policy));
    expect(ports({})).toEqual([]);
    expect(ports({ netBind: [80], netAllowBind: ['udp://53', '6379'] })).toEqual([
      { from: 80, to: 80 },
      { from: 6379, to: 6379 },
    ]);
    expect(ports({ netAllowBind: ['6379'], portRemap: true })).toEqual([
      { from: 0, to: 0 },
      { from: 6379, to: 6379 },
    ]);
    expect(ports({ netAllowBind: ['tcp://*'] })).toBe('any');
    expect(ports({ netAllowBind: ['0-1000', '1001-65535'] })).toBe('any');
    expect(ports({ netDenyBind: ['22'] })).toBe('any');
  });

  it('refuses an allow and a deny list together', () => {
    expect(() => parsePolicy({ netAllowBind: ['80'], netDenyBind: ['22'] })).toThrow(
      'netDenyBind: a policy has netAllowBind (what may be bound) or netDenyBind (what may not), not both',
    );
    expect(() => parsePolicy({ netBind: [80], netDenyBind: ['22'] })).toThrow(
      'netDenyBind: a policy has netBind (TCP ports that may be bound) or netDenyBind (ports that may not), not both',
    );
  });
});
