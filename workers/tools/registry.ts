/** Tool registry: exposes tools to the model and runs validated tool calls. */
import { Ajv, type ValidateFunction } from 'ajv';
import { calculatorTool } from './calculator.js';
import { clockTool } from './clock.js';
import { ToolError, type Tool, type ToolContext } from './tool.js';

export { ToolError } from './tool.js';
export type { Tool, ToolContext, ToolErrorCode } from './tool.js';

export interface OpenAITool {
  type: 'function';
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export class ToolRegistry {
  private readonly tools = new Map<string, { tool: Tool; validate: ValidateFunction }>();
  private readonly ajv = new Ajv({ allErrors: true });

  constructor(tools: Tool[]) {
    for (const tool of tools) {
      if (this.tools.has(tool.name)) throw new Error(`Duplicate tool name "${tool.name}"`);
      // Compiled once per tool; an invalid schema fails here, at startup.
      this.tools.set(tool.name, { tool, validate: this.ajv.compile(tool.parameters) });
    }
  }

  get(name: string): Tool | undefined {
    return this.tools.get(name)?.tool;
  }

  names(): string[] {
    return [...this.tools.keys()];
  }

  /** Tool definitions for the Chat Completions `tools` parameter (all tools, or `names` in that order). */
  openaiTools(names?: string[]): OpenAITool[] {
    return (names ?? this.names()).map((name) => {
      const tool = this.get(name);
      if (!tool) throw new ToolError('tool_not_found', `Unknown tool "${name}".`);
      return {
        type: 'function' as const,
        function: { name: tool.name, description: tool.description, parameters: tool.parameters as Record<string, unknown> },
      };
    });
  }

  /**
   * Parses `rawArguments` (an empty string means {}), validates against the tool's
   * schema and runs the tool. Failures throw ToolError; if `ctx.signal` is aborted
   * the tool's own error (normally the abort reason) is rethrown unchanged.
   */
  async run(name: string, rawArguments: string, ctx: ToolContext): Promise<string> {
    const entry = this.tools.get(name);
    if (!entry) {
      throw new ToolError('tool_not_found', `Unknown tool "${name}". Available tools: ${this.names().join(', ') || 'none'}.`);
    }
    let args: unknown;
    try {
      args = rawArguments.trim() === '' ? {} : JSON.parse(rawArguments);
    } catch (e) {
      throw new ToolError('tool_bad_arguments', `Arguments for tool "${name}" are not valid JSON: ${(e as Error).message}`);
    }
    if (args === null || typeof args !== 'object' || Array.isArray(args)) {
      throw new ToolError('tool_bad_arguments', `Arguments for tool "${name}" must be a JSON object.`);
    }
    if (!entry.validate(args)) {
      const detail = this.ajv.errorsText(entry.validate.errors, { dataVar: 'arguments', separator: '; ' });
      throw new ToolError('tool_bad_arguments', `Invalid arguments for tool "${name}": ${detail}.`);
    }
    ctx.signal.throwIfAborted();
    try {
      const result = await entry.tool.execute(args, ctx);
      return typeof result === 'string' ? result : JSON.stringify(result);
    } catch (e) {
      if (e instanceof ToolError || ctx.signal.aborted) throw e;
      throw new ToolError('tool_failed', `Tool "${name}" failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
}

export const builtinTools: Tool[] = [clockTool, calculatorTool];

export function createDefaultRegistry(): ToolRegistry {
  return new ToolRegistry(builtinTools);
}
