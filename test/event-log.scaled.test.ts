import { eventLogSuite } from './event-log.case.js';

eventLogSuite('scaled');
