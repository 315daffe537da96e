import { formatBytes } from "../lib/format.ts";

/**
 * A one-line progress display on stderr, shown only when stderr is a terminal (nothing on a pipe
 * or in a log file). Redraws at most 10 times a second.
 */
export class Progress {
  private bytes = 0;
  private objects = 0;
  private last = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly label: string,
    private readonly totalObjects: number,
    private readonly totalBytes: number,
  ) {
    this.enabled = Deno.stderr.isTerminal() && !Deno.env.get("NO_PROGRESS");
  }

  addBytes(n: number): void {
    this.bytes += n;
    this.draw(false);
  }

  addObject(): void {
    this.objects++;
    this.draw(false);
  }

  done(): void {
    if (!this.enabled) return;
    Deno.stderr.writeSync(this.encoder.encode("\r\x1b[K"));
  }

  private draw(force: boolean): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const elapsed = (now - this.started) / 1000;
    const rate = elapsed > 0 ? this.bytes / elapsed : 0;
    const eta = rate > 0 && this.totalBytes > this.bytes
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
    Deno.stderr.writeSync(this.encoder.encode(line));
  }
}
