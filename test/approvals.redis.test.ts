import { approvalsSuite } from './approvals.case.js';

approvalsSuite('redis');
