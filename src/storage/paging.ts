/** A guard against listings that page in circles; backend-neutral (the S3 backend uses it). */

/**
 * A listing that never ends is a server bug (or a hostile one), not a big bucket: a continuation
 * token seen before, a start-after key that does not advance, or more empty pages marked truncated
 * in a row than any real store sends. `check` returns why the listing is looping, else undefined.
 */
export class PagingGuard {
  private readonly tokens = new Set<string>();
  private emptyInARow = 0;
  private lastStart?: string;

  constructor(private readonly maxEmptyPages = 100) {}

  /** Called for each truncated page with its key count and how the next page would be asked for. */
  check(page: { keys: number; nextToken?: string; startAfter?: string }): string | undefined {
    this.emptyInARow = page.keys === 0 ? this.emptyInARow + 1 : 0;
    if (this.emptyInARow > this.maxEmptyPages) {
      return `${this.emptyInARow} empty pages in a row, each marked truncated`;
    }
    if (page.nextToken !== undefined) {
      if (this.tokens.has(page.nextToken)) return "a continuation token it had already given";
      this.tokens.add(page.nextToken);
    } else if (page.startAfter !== undefined) {
      if (this.lastStart !== undefined && page.startAfter <= this.lastStart) {
        return "a page that does not advance past the previous one";
      }
      this.lastStart = page.startAfter;
    }
    return undefined;
  }
}
