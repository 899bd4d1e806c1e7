import { queueSuite } from './queue.case.js';

queueSuite('bullmq');
