import { brokerSuite } from './broker.case.js';

brokerSuite('cluster');
