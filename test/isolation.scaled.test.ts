import { isolationSuite } from './isolation.case.js';

isolationSuite('scaled');
