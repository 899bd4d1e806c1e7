import { brokerSuite } from './broker.case.js';

brokerSuite('memory');
