// The OS layer: the only code that runs external programs or touches devices and mounts.
export * from './exec.js';
export * from './mountinfo.js';
export * from './mount.js';
export * from './native-mount.js';
export * from './loop.js';
export * from './format.js';
export * from './fs.js';
export * from './privileges.js';
export * from './copy.js';
export * from './xattr.js';
