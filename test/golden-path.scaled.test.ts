import { goldenPathSuite } from './golden-path.case.js';

goldenPathSuite('scaled');
