import { eventWritesSuite } from './event-writes.case.js';

eventWritesSuite('scaled');
