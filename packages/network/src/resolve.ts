import { lookup } from 'node:dns/promises';
import {
  hostMatches,
  isWildcardHost,
  netRulesOf,
  type Policy,
  parseHttpAuth,
  parseHttpRule,
} from '@sandlock/policy';

/** A host name of the rules could not be resolved: the sandbox does not start. */
export class HostResolutionError extends Error {
  override readonly name = 'HostResolutionError';
}

/** The host names (not wildcards) the policy's HTTP rules name. */
function httpHosts(policy: Partial<Pick<Policy, 'httpAllow' | 'httpDeny' | 'httpAuth'>>): string[] {
  const hosts: string[] = [];
  for (const text of [...(policy.httpAllow ?? []), ...(policy.httpDeny ?? [])]) {
    const rule = parseHttpRule(text);
    if (typeof rule !== 'string') hosts.push(rule.host);
  }
  for (const text of policy.httpAuth ?? []) {
    const auth = parseHttpAuth(text);
    if (typeof auth !== 'string') hosts.push(auth.rule.host);
  }
  return hosts.filter((host) => host !== '*' && !isWildcardHost(host));
}

/**
 * The addresses every host name of the policy's rules resolves to now
 * (getaddrinfo, all of them), for the sandbox's whole life: what it may
 * reach does not change when DNS does, and the sandbox sees the same
 * addresses in its /etc/hosts.
 *
 * @throws HostResolutionError naming the host that did not resolve.
 */
export async function resolveNetHosts(
  policy: Pick<Policy, 'netAllow' | 'netDeny'> &
    Partial<Pick<Policy, 'httpAllow' | 'httpDeny' | 'httpAuth'>>,
): Promise<Record<string, string[]>> {
  const resolved = await resolveNames(policy);
  // A wildcard of netDeny is pinned to the addresses of the names beneath
  // it that the policy names (in any rule), so that those addresses are
  // refused also where no name is seen (a bare address, UDP). A name that
  // does not resolve adds none: it is denied by name all the same.
  const net = netRulesOf(policy);
  if (net?.mode === 'deny') {
    const named = [
      ...net.rules.flatMap((rule) =>
        rule.host === null || isWildcardHost(rule.host) ? [] : [rule.host],
      ),
      ...httpHosts(policy),
    ];
    for (const rule of net.rules) {
      if (rule.host === null || !isWildcardHost(rule.host)) continue;
      const wildcard = rule.host;
      const beneath = [...new Set(named.filter((name) => hostMatches(wildcard, name)))];
      const addresses = await Promise.all(
        beneath.map((name) =>
          resolved[name] !== undefined
            ? resolved[name]
            : lookup(name, { all: true, verbatim: true }).then(
                (found) => found.map((entry) => entry.address),
                () => [],
              ),
        ),
      );
      resolved[wildcard] = [...new Set(addresses.flat())];
    }
  }
  return resolved;
}

async function resolveNames(
  policy: Pick<Policy, 'netAllow' | 'netDeny'>,
): Promise<Record<string, string[]>> {
  const names = new Set(
    (netRulesOf(policy)?.rules ?? []).flatMap((rule) =>
      // A wildcard is matched by name (the HTTP proxy), never pinned.
      rule.host === null || isWildcardHost(rule.host) ? [] : [rule.host],
    ),
  );
  const resolved: Record<string, string[]> = {};
  await Promise.all(
    [...names].map(async (name) => {
      try {
        const found = await lookup(name, { all: true, verbatim: true });
        resolved[name] = [...new Set(found.map((entry) => entry.address))];
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? String(error);
        throw new HostResolutionError(`sandlock: cannot resolve ${name} (${code})`);
      }
    }),
  );
  return resolved;
}
