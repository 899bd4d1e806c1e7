import { rateLimitsSuite } from './rate-limits.case.js';

rateLimitsSuite('cluster');
