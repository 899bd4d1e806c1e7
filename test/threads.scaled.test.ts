import { threadsSuite } from './threads.case.js';

threadsSuite('scaled');
