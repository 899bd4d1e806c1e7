import { searchSuite } from './search.case.js';

searchSuite('scaled');
