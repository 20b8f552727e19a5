export { BUNDLE_PATHS, BUNDLE_VARIABLES, type CaBundle, caBundle } from './bundle.js';
export { CaError, CertificateAuthority, type Leaf, LeafCache } from './ca.js';
export { authHeader, CredentialError, type Credentials, readCredentials } from './credentials.js';
export { type DnsOutcome, SandboxDns } from './dns.js';
export {
  addressRefusal,
  addressText,
  isSpecialAddress,
  NameChain,
  type NameOptions,
  type NameSource,
  Names,
  namesMatterAt,
} from './names.js';
export { classifyOpening, type Opening } from './opening.js';
export { BadTarget, decodedPath, pathReadings } from './path.js';
export {
  type Denial,
  type Destination,
  HttpProxy,
  type Level,
  type PortRanges,
  type ProxyOptions,
  parseAuthority,
} from './proxy.js';
export { type CompiledRule, type Decision, HttpRules, type RequestFacts } from './rules.js';
export { type HttpSetup, httpSetup } from './setup.js';
export { type Hello, readHello } from './sni.js';
