export { PolicyBuilder, type PolicySetters } from './builder.js';
export { PolicyDraft, parsePolicy } from './draft.js';
export type { FieldSpec, FlagSpec, Setter } from './field.js';
export { FIELD_NAMES, FIELDS, type FieldName, type Fields, type Policy } from './fields.js';
export { applyFlag, type PolicyFlag, policyFlags } from './flags.js';
export {
  type AuthScheme,
  type CredentialSource,
  type HttpAuth,
  type HttpRule,
  httpRuleText,
  parseCredentialSource,
  parseHttpAuth,
  parseHttpRule,
} from './http-spec.js';
export type { Kind, MountSpec, PluginRef, PortSpec, Schema } from './kinds.js';
export { parseMount } from './kinds.js';
export {
  type BindProtocol,
  type BindRule,
  bindRuleMatches,
  bindSpec,
  hostMatches,
  isWildcardHost,
  type NetProtocol,
  type NetRule,
  netSpec,
  parseBindRule,
  parseHostPattern,
  parseNetRule,
} from './net-spec.js';
export { type Origin, PolicyError, type PolicyProblem, whereOf } from './origin.js';
export {
  DEVICES,
  devicePaths,
  expandPresets,
  SYSTEM_ETC,
  SYSTEM_PROGRAMS,
} from './presets.js';
export {
  badProfileName,
  listProfiles,
  profileDir,
  profileDraft,
  profilePath,
  profileSections,
  readProfile,
} from './profile.js';
export { profileText } from './profile-text.js';
export { policyReference } from './reference.js';
export { policySchema } from './schema.js';
export { formatByteSize, parseByteSize } from './size.js';
export { distance, nearest } from './suggest.js';
export {
  type BindView,
  bindsOf,
  canonical,
  connectPortsOf,
  type Datagrams,
  datagramsOf,
  type HttpRedirect,
  landlockBindPorts,
  type ModulePolicy,
  mayBind,
  modulePolicy,
  type NetView,
  netRulesOf,
  policyReads,
} from './view.js';

import { PolicyDraft } from './draft.js';
import type { Policy } from './fields.js';

/** Every field at its default. */
export const DEFAULT_POLICY: Policy = new PolicyDraft().resolve();
