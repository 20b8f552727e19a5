// Everything a sandbox's HTTP policy needs, made from its policy in one call.
import type { NetView, Policy } from '@sandlock/policy';
import { type CaBundle, caBundle } from './bundle.js';
import { CertificateAuthority } from './ca.js';
import { type Credentials, readCredentials } from './credentials.js';
import { type DnsOutcome, SandboxDns } from './dns.js';
import { Names } from './names.js';
import { type Denial, HttpProxy, type PortRanges } from './proxy.js';
import { HttpRules } from './rules.js';

export interface HttpSetup {
  readonly rules: HttpRules;
  readonly names: Names;
  readonly proxy: HttpProxy;
  readonly dns: SandboxDns;
  readonly credentials: Credentials;
  /** The trust bundles the sandbox should see (the system's plus the CA), and the variables naming them. */
  readonly bundle: CaBundle;
}

/**
 * The proxy, DNS answerer, credentials and trust bundles of one sandbox.
 * The CA is the policy's (`httpCa`/`httpKey`) or one made now.
 *
 * @param readable Whether the sandbox could read a path (credential files must not be).
 * @throws CaError, CredentialError naming the flag.
 */
export async function httpSetup(
  policy: Pick<
    Policy,
    'httpAllow' | 'httpDeny' | 'httpAuth' | 'httpCa' | 'httpKey' | 'credentials'
  >,
  net: NetView | null,
  options: {
    readonly readable: (path: string) => boolean;
    readonly onDenied?: (denial: Denial) => void;
    readonly onDns?: (outcome: DnsOutcome) => void;
    readonly lookup?: (name: string) => Promise<string[]>;
    readonly upstreamCa?: string | readonly string[];
    readonly env?: NodeJS.ProcessEnv;
    /** The TCP ports the sandbox's Landlock domain lets it connect to (default: any). */
    readonly connectPorts?: PortRanges;
  },
): Promise<HttpSetup> {
  const rules = new HttpRules(policy);
  const names = new Names({
    net,
    http: rules,
    ...(options.lookup ? { lookup: options.lookup } : {}),
  });
  const credentials = readCredentials(policy, options.readable, options.env);
  const ca =
    policy.httpCa !== null && policy.httpKey !== null
      ? await CertificateAuthority.fromFiles(policy.httpCa, policy.httpKey)
      : await CertificateAuthority.ephemeral();
  const proxy = new HttpProxy({
    rules,
    names,
    ca,
    secrets: credentials.secrets,
    ...(options.onDenied ? { onDenied: options.onDenied } : {}),
    ...(options.upstreamCa !== undefined ? { upstreamCa: options.upstreamCa } : {}),
    ...(options.connectPorts !== undefined ? { connectPorts: options.connectPorts } : {}),
  });
  return {
    rules,
    names,
    proxy,
    dns: new SandboxDns(names, options.onDns),
    credentials,
    bundle: caBundle(ca.certificatePem),
  };
}
