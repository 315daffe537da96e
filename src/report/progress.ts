import { formatBytes } from "../lib/format.ts";
import { planObjects } from "../replica/restore.ts";
import type { ChosenPlan } from "../replica/restore.ts";

/** Where progress is drawn: stderr in a real run (see `consoleOutput`), a capture in tests. */
export interface ProgressSink {
  /** Whether the sink is a terminal; progress is drawn only there. */
  readonly isTerminal: boolean;
  /** Writes `text` as it is (carriage returns and erase codes included, no newline added). */
  write(text: string): void;
}

/**
 * A one-line progress display, shown only when the sink is a terminal (nothing on a pipe or in a
 * log file) and `NO_PROGRESS` is unset. Redraws at most 10 times a second.
 */
export class Progress {
  private bytes = 0;
  private objects = 0;
  private last = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;

  constructor(
    private readonly sink: ProgressSink | undefined,
    private readonly label: string,
    private readonly totalObjects: number,
    private readonly totalBytes: number,
  ) {
    this.enabled = !!sink?.isTerminal && !Deno.env.get("NO_PROGRESS");
  }

  /** Arrow functions, so they can be passed as callbacks (`onDownload: progress.addBytes`). */
  readonly addBytes = (n: number): void => {
    this.bytes += n;
    this.draw(false);
  };

  readonly addObject = (): void => {
    this.objects++;
    this.draw(false);
  };

  done(): void {
    if (!this.enabled) return;
    this.sink!.write("\r\x1b[K");
  }

  private draw(force: boolean): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const elapsed = (now - this.started) / 1000;
    const rate = elapsed > 0 ? this.bytes / elapsed : 0;
    // An ETA from less than a second of transfer is noise (and would make the first line depend
    // on scheduling), so it appears from the second second on.
    const eta = elapsed >= 1 && rate > 0 && this.totalBytes > this.bytes
      ? ` ETA ${Math.ceil((this.totalBytes - this.bytes) / rate)}s`
      : "";
    const pct = this.totalBytes > 0
      ? Math.min(100, Math.floor((this.bytes / this.totalBytes) * 100))
      : 0;
    const width = 20;
    const filled = Math.round((pct / 100) * width);
    const bar = "#".repeat(filled) + "-".repeat(width - filled);
    const line = `\r\x1b[K${this.label} [${bar}] ${pct}% ${formatBytes(this.bytes)}/${
      formatBytes(this.totalBytes)
    } ${this.objects}/${this.totalObjects} files${eta}`;
    this.sink!.write(line);
  }
}

/** A progress line for restoring `chosen`: every object and byte of its plan. */
export function restoreProgress(
  sink: ProgressSink | undefined,
  label: string,
  chosen: ChosenPlan,
): Progress {
  const objects = planObjects(chosen);
  return new Progress(sink, label, objects.length, objects.reduce((n, o) => n + o.size, 0));
}
