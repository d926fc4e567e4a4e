/**
 * Finds where a message body ends while its bytes stream through untouched. Content-Length counts down;
 * chunked is walked by a small state machine that reads chunk sizes and skips chunk data in one step, so a
 * 1 GiB upload costs a few comparisons per chunk and is never held in memory. The bytes themselves are
 * forwarded as they came (no de-chunking, no re-chunking).
 */
import { Body } from "./parse";

const enum S {
  Size0, // first hex digit of a chunk size
  Size, // more hex digits, then ';', BWS or CR
  Ext, // chunk extension up to CR
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart, // after the last chunk: CR (end) or a trailer field
  Trailer,
  TrailerLf,
  EndLf,
}

/** Result of feed(): the index just past the body's end in the buffer, or one of these. */
export const MORE = -1;
export const BAD = -2;

const MAX_SIZE_DIGITS = 13; // 2^52: far beyond any body, still an exact double
const MAX_LINE = 4096; // a chunk-size line with its extensions, or one trailer line
const MAX_TRAILERS = 32768;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export class BodyFramer {
  kind: Body = Body.None;
  /** Content-Length: bytes still to come. Chunked: bytes left in the current chunk. */
  remaining = 0;
  private st = S.Size0;
  private digits = 0;
  private lineLen = 0;
  private trailerLen = 0;
  /** A human reason after BAD. */
  error = "";

  start(kind: Body, length: number): void {
    this.kind = kind;
    this.remaining = length;
    this.st = S.Size0;
    this.digits = 0;
    this.lineLen = 0;
    this.trailerLen = 0;
    this.error = "";
  }

  get done(): boolean {
    return this.kind === Body.None;
  }

  /**
   * Consumes buf[from..]. Returns the index just past the body's last byte when the body ends inside this
   * buffer (the framer then switches to None), MORE when all of it was body, BAD on a chunked syntax error.
   */
  feed(buf: Buffer, from: number): number {
    switch (this.kind) {
      case Body.None:
        return from;
      case Body.Close:
        return MORE;
      case Body.Length: {
        const avail = buf.length - from;
        if (avail < this.remaining) {
          this.remaining -= avail;
          return MORE;
        }
        const end = from + this.remaining;
        this.remaining = 0;
        this.kind = Body.None;
        return end;
      }
      case Body.Chunked:
        return this.chunked(buf, from);
    }
  }

  private fail(reason: string): number {
    this.error = reason;
    return BAD;
  }

  private chunked(buf: Buffer, i: number): number {
    const n = buf.length;
    while (i < n) {
      switch (this.st) {
        case S.Data: {
          const avail = n - i;
          if (avail <= this.remaining) {
            this.remaining -= avail;
            if (this.remaining === 0) this.st = S.DataCr;
            return MORE;
          }
          i += this.remaining;
          this.remaining = 0;
          this.st = S.DataCr;
          continue;
        }
        case S.Size0: {
          const h = hexValue(buf[i]);
          if (h < 0) return this.fail("invalid chunk size");
          this.remaining = h;
          this.digits = 1;
          this.lineLen = 1;
          this.st = S.Size;
          break;
        }
        case S.Size: {
          const c = buf[i];
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.fail("chunk size too large");
            this.remaining = this.remaining * 16 + h;
          } else if (c === 13) this.st = S.SizeLf;
          else if (c === 59 /* ; */ || c === 32 || c === 9) this.st = S.Ext;
          else return this.fail("invalid chunk size");
          this.lineLen++;
          break;
        }
        case S.Ext: {
          const c = buf[i];
          if (c === 13) this.st = S.SizeLf;
          else if (c === 10 || c === 0) return this.fail("invalid chunk extension");
          if (++this.lineLen > MAX_LINE) return this.fail("chunk extension too long");
          break;
        }
        case S.SizeLf:
          if (buf[i] !== 10) return this.fail("chunk size line without CRLF");
          this.st = this.remaining === 0 ? S.TrailerStart : S.Data;
          break;
        case S.DataCr:
          if (buf[i] !== 13) return this.fail("chunk data longer than its size");
          this.st = S.DataLf;
          break;
        case S.DataLf:
          if (buf[i] !== 10) return this.fail("chunk data without CRLF");
          this.st = S.Size0;
          break;
        case S.TrailerStart:
          if (buf[i] === 13) this.st = S.EndLf;
          else if (buf[i] === 10 || buf[i] === 32 || buf[i] === 9) return this.fail("invalid trailer");
          else {
            this.lineLen = 1;
            this.st = S.Trailer;
          }
          break;
        case S.Trailer: {
          const c = buf[i];
          if (c === 13) this.st = S.TrailerLf;
          else if (c === 10 || c === 0) return this.fail("invalid trailer");
          if (++this.lineLen > MAX_LINE || ++this.trailerLen > MAX_TRAILERS) return this.fail("trailers too large");
          break;
        }
        case S.TrailerLf:
          if (buf[i] !== 10) return this.fail("trailer without CRLF");
          this.st = S.TrailerStart;
          break;
        case S.EndLf:
          if (buf[i] !== 10) return this.fail("last chunk without CRLF");
          this.kind = Body.None;
          return i + 1;
      }
      i++;
    }
    return MORE;
  }
}
