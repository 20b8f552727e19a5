export { PolicyBuilder } from '@sandlock/policy';
