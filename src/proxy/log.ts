/**
 * JSON log lines (one object per line on stdout). Lines are buffered and written in batches (at the next
 * turn of the event loop, or when 64 KiB are waiting) so a busy worker does not make one write per connection.
 */
export type LogSink = (line: string) => void;

export class JsonLog {
  private buf: string[] = [];
  private bytes = 0;
  private scheduled = false;

  constructor(
    private readonly sink: LogSink = (s) => process.stdout.write(s),
    private readonly base: Record<string, unknown> = {},
  ) {}

  write(record: Record<string, unknown>): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...this.base, ...record }) + "\n";
    this.buf.push(line);
    this.bytes += line.length;
    if (this.bytes > 65536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.buf.length === 0) return;
    // Whole lines in writes of at most ~4 KiB: a pipe write up to PIPE_BUF is atomic, so lines from several
    // worker processes sharing stdout never interleave mid-line.
    let chunk = "";
    for (const line of this.buf) {
      if (chunk.length && chunk.length + line.length > 4000) {
        this.sink(chunk);
        chunk = "";
      }
      chunk += line;
    }
    this.buf = [];
    this.bytes = 0;
    if (chunk) this.sink(chunk);
  }
}
