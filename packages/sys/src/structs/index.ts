export * from './clone-args.js';
export * from './filter.js';
export * from './iovec.js';
export * from './landlock.js';
export * from './msghdr.js';
export * from './open-how.js';
export * from './seccomp.js';
export * from './sockaddr.js';
