export {
  DEFAULT_POLICY,
  type PluginRef,
  type Policy,
  type PortSpec,
  parsePolicy,
} from '@sandlock/policy';
