/** Tool contract shared by the agent worker and the built-in tools. */
export interface ToolContext { signal: AbortSignal }

export interface Tool<A = any> {
  name: string;
  description: string;
  /** JSON Schema of the arguments (an object schema), sent to the model as-is. */
  parameters: object;
  /** Returns the result string sent back to the model. */
  execute(args: A, ctx: ToolContext): Promise<string>;
}

export type ToolErrorCode = 'tool_not_found' | 'tool_bad_arguments' | 'tool_failed';

/** A failure with a human-readable message suitable for returning to the model. */
export class ToolError extends Error {
  override readonly name = 'ToolError';
  constructor(readonly code: ToolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
