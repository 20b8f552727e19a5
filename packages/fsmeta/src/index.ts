export { FS_META_SYSCALLS } from './fs-meta.js';
export { FS_META_MODULE } from './module-url.js';
export { type FsMetaPolicy, writableByPolicy } from './policy.js';
