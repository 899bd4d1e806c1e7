import { agentsSuite } from './agents.case.js';

agentsSuite('redis');
