import { ticketSuite } from './tickets.case.js';

ticketSuite('memory');
