import { conversationSuite } from './conversation.case.js';

conversationSuite('scaled');
