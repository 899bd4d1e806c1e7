import { queueSuite } from './queue.case.js';

queueSuite('cluster');
