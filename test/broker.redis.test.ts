import { brokerSuite } from './broker.case.js';

brokerSuite('redis');
