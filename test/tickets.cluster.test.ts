import { ticketSuite } from './tickets.case.js';

ticketSuite('cluster');
