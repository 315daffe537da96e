/**
 * Lists inside one-line messages: at most `max` items, then how many more. A config with 100,000
 * databases must not turn an error into a 1.5 MB line; the first few names are what an operator
 * needs to spot a typo.
 */
export function listForMessage(items: readonly string[], max = 10, none = "none"): string {
  if (items.length === 0) return none;
  if (items.length <= max) return items.join(", ");
  return `${items.slice(0, max).join(", ")}, … (${items.length} in all)`;
}
