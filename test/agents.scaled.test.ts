import { agentsSuite } from './agents.case.js';

agentsSuite('scaled');
