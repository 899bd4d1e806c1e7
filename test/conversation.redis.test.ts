import { conversationSuite } from './conversation.case.js';

conversationSuite('redis');
