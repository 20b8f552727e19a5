export {
  type HandleOptions,
  type LoggingOptions,
  landlockRuleset,
  type PathOptions,
  RulesetBuilder,
  type RulesetOptions,
} from './builder.js';
export type { LandlockRuleset, SkippedPath } from './create.js';
export { detectLandlock, type LandlockSupport } from './detect.js';
export {
  LandlockAbiError,
  LandlockError,
  LandlockPathError,
  LandlockRuleError,
  LandlockUnavailableError,
  type MissingFeature,
} from './errors.js';
export { INTENT_RIGHTS, type Intent } from './intents.js';
export type { DroppedFeature, EnforcementStatus, RulesetPlan } from './plan.js';
export { MAX_PORT, type PortRange, type Ports } from './ports.js';
export type { Compatibility, PathRule, PortRule, RulesetRequest } from './request.js';
export {
  ALL_FS_RIGHTS,
  ALL_NET_RIGHTS,
  ALL_SCOPES,
  FEATURES,
  type Feature,
  type FeatureCategory,
  type FeatureInfo,
  FILE_RIGHTS,
  type FsRight,
  KNOWN_ABI,
  type LogFlag,
  type NetRight,
  type Scope,
} from './rights.js';
export { restrictSelfSteps } from './step.js';
