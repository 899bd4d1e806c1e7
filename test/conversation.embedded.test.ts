import { conversationSuite } from './conversation.case.js';

conversationSuite('embedded');
