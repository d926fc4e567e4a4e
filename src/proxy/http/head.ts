/**
 * Finds the end of an HTTP head (CRLFCRLF) across socket chunks without re-scanning what was already seen.
 *
 * The common case — a whole head inside one chunk — costs one native indexOf and no copy. A head that spans
 * chunks is copied into one growable buffer (bounded by the caller's limit), and each new chunk is searched
 * from three bytes before its start, so a client trickling one byte at a time costs O(n), not O(n²).
 */
const CRLFCRLF = Buffer.from("\r\n\r\n", "latin1");

export interface HeadFound {
  /** The buffer that holds the head (the chunk itself, or the accumulation buffer). */
  buf: Buffer;
  /** The head is buf[start, end); end is just past the blank line. */
  start: number;
  end: number;
  /** Bytes after the head (body or a pipelined request) are buf[end, restEnd). */
  restEnd: number;
}

export class HeadReader {
  private acc: Buffer | null = null;
  private len = 0;
  /** Bytes seen for the head so far (0: nothing yet). */
  get pending(): number {
    return this.len;
  }

  constructor(private readonly limit: number) {}

  reset(): void {
    this.acc = null;
    this.len = 0;
  }

  /**
   * Feeds buf[offset..]. Returns the head when complete, null when more bytes are needed, or "too-large" when
   * the head exceeds the limit. `skipLeadingCrlf`: ignore empty lines before a request line (RFC 9112 §2.2).
   */
  push(chunk: Buffer, offset: number, skipLeadingCrlf: boolean): HeadFound | null | "too-large" {
    if (this.len === 0) {
      if (skipLeadingCrlf) {
        // Empty lines between requests (some clients send a CRLF after a POST body) carry no meaning.
        while (offset < chunk.length && (chunk[offset] === 13 || chunk[offset] === 10)) offset++;
        if (offset >= chunk.length) return null;
      }
      const idx = chunk.indexOf(CRLFCRLF, offset);
      if (idx >= 0) {
        if (idx + 4 - offset > this.limit) return "too-large";
        return { buf: chunk, start: offset, end: idx + 4, restEnd: chunk.length };
      }
      const n = chunk.length - offset;
      if (n > this.limit) return "too-large";
      this.acc = Buffer.allocUnsafe(Math.max(4096, Math.min(this.limit + 4, n * 2)));
      chunk.copy(this.acc, 0, offset);
      this.len = n;
      return null;
    }
    const n = chunk.length - offset;
    const before = this.len;
    let acc = this.acc!;
    // Copy at most what can still belong to a head within the limit (plus the 3 bytes of a CRLFCRLF straddle).
    if (before + n > acc.length) {
      const want = Math.min(Math.max(acc.length * 2, before + n), this.limit + 4 + n);
      const grown = Buffer.allocUnsafe(want);
      acc.copy(grown, 0, 0, before);
      acc = this.acc = grown;
    }
    chunk.copy(acc, before, offset);
    this.len = before + n;
    const from = before >= 3 ? before - 3 : 0;
    const view = acc.subarray(0, this.len);
    const idx = view.indexOf(CRLFCRLF, from);
    if (idx >= 0) {
      if (idx + 4 > this.limit) return "too-large";
      const found = { buf: view, start: 0, end: idx + 4, restEnd: this.len };
      this.acc = null;
      this.len = 0;
      return found;
    }
    if (this.len > this.limit) return "too-large";
    return null;
  }
}
