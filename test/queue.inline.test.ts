import { queueSuite } from './queue.case.js';

queueSuite('inline');
