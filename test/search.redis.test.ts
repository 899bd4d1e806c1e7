import { searchSuite } from './search.case.js';

searchSuite('redis');
