export { BUNDLE_PATHS, BUNDLE_VARIABLES, type CaBundle, caBundle } from './bundle.js';
export { CaError, CertificateAuthority, type Leaf, LeafCache } from './ca.js';
export { authHeader, CredentialError, type Credentials, readCredentials } from './credentials.js';
export { type DnsOutcome, SandboxDns } from './dns.js';
export { addressText, isSpecialAddress, type NameOptions, Names } from './names.js';
export { BadTarget, decodedPath, pathReadings } from './path.js';
export {
  type Denial,
  type Destination,
  HttpProxy,
  type ProxyOptions,
  parseAuthority,
} from './proxy.js';
export { type CompiledRule, type Decision, HttpRules, type RequestFacts } from './rules.js';
export { type HttpSetup, httpSetup } from './setup.js';
export { type Hello, readHello } from './sni.js';
