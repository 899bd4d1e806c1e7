export * from './codes.js';
export * from './frames.js';
export * from './schemas.js';
export * from './validate.js';
export * from './resources.js';
export * from './limits.js';
