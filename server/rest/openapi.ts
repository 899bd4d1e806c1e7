/** Placeholder replaced below. */
export function openApiDocument(): object {
  return {};
}
