export { type Disposition, type FinishOptions, type FinishResult, finishLayer } from './finish.js';
export { diffsOf, type FormatOptions, formatChanges } from './format.js';
export {
  type Change,
  type ChangeKind,
  type CleanReport,
  type CreateOptions,
  cleanStaleLayers,
  defaultStore,
  Layer,
  type LayerMeta,
  type LayerState,
  listLayers,
  type OpenOptions,
  type Owner,
  StoreError,
} from './layer/index.js';
