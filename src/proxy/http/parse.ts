/**
 * Request and response head parsing: only what routing and framing need (method, target, version, Host,
 * Content-Length, Transfer-Encoding, Connection, Upgrade, the X-Forwarded-* headers; on the response side
 * status, framing, Strict-Transport-Security and Set-Cookie). Everything else is forwarded as bytes.
 *
 * Strict on purpose: anything two parsers could read differently (CL with TE, duplicate CL, bare CR/LF, NUL,
 * obs-fold, a space before the colon) is refused here, so a request the proxy forwards is framed the same way
 * by the real server (no request smuggling).
 */

export const enum Body {
  None = 0,
  Length = 1,
  Chunked = 2,
  /** Responses only: the body ends when the server closes. */
  Close = 3,
}

export interface RequestHead {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  host: string | undefined;
  body: Body;
  length: number;
  /** The client wants its connection kept after this exchange. */
  keepAlive: boolean;
  /** Upgrade requested (Upgrade header and the upgrade token in Connection). */
  upgrade: boolean;
  expectContinue: boolean;
  isHead: boolean;
  /** The client sent X-Forwarded-For (joined chain), or undefined. */
  xff: string | undefined;
  /** The client sent X-Forwarded-Proto or X-Forwarded-Port (replaced when the VIP sets them). */
  xfOther: boolean;
  /** An HTTP/1.1 request with `Connection: close`: the token is stripped towards the server so the pooled
   * server connection survives (the proxy closes the client side itself). */
  stripClose: boolean;
  /** The path for redirects (origin-form; the path of an absolute-form target). */
  path: string;
}

export interface HttpError {
  status: number;
  reason: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
/** name ":" value, where the value holds no control character except HTAB (no NUL, no bare CR/LF). */
const FIELD_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/;
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]{0,5})?$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9]{2})(?: [\t\x20-\x7e\x80-\xff]*)?$/;

function trimOws(v: string): string {
  let a = 0;
  let b = v.length;
  while (a < b && (v.charCodeAt(a) === 32 || v.charCodeAt(a) === 9)) a++;
  while (b > a && (v.charCodeAt(b - 1) === 32 || v.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === v.length ? v : v.slice(a, b);
}

/** Lower-cased, trimmed, non-empty list items of a comma-separated header value. */
export function listTokens(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(",")) {
    const t = trimOws(part).toLowerCase();
    if (t) out.push(t);
  }
  return out;
}

function err(status: number, reason: string): HttpError {
  return { status, reason };
}

/** Compares an absolute-form authority with the Host header (case-insensitive, default port of the scheme). */
function sameAuthority(a: string, b: string, defaultPort: string): boolean {
  const norm = (h: string) => {
    h = h.toLowerCase();
    let host = h;
    let port = "";
    if (h.startsWith("[")) {
      const c = h.indexOf("]");
      host = h.slice(0, c + 1);
      port = h.slice(c + 1).replace(/^:/, "");
    } else {
      const c = h.lastIndexOf(":");
      if (c >= 0) {
        host = h.slice(0, c);
        port = h.slice(c + 1);
      }
    }
    return `${host}:${port === "" ? defaultPort : port}`;
  };
  return norm(a) === norm(b);
}

/**
 * Parses a request head: s is the head as latin1 text up to and including its final CRLFCRLF.
 */
export function parseRequestHead(s: string): RequestHead | HttpError {
  let eol = s.indexOf("\r\n");
  const line = s.slice(0, eol);
  const m = REQUEST_LINE.exec(line);
  if (!m) {
    if (/ HTTP\/[0-9]\.[0-9]$/.test(line) && REQUEST_LINE.exec(line.replace(/HTTP\/[0-9]\.[0-9]$/, "HTTP/1.1"))) {
      return err(505, "unsupported HTTP version");
    }
    return err(400, "malformed request line");
  }
  const method = m[1];
  const target = m[2];
  const minor = m[3] === "1" ? 1 : 0;
  let host: string | undefined;
  let cl = -1;
  let te: string | undefined;
  let conn: string | undefined;
  let upgradeHeader = false;
  let expectContinue = false;
  let xff: string | undefined;
  let xfOther = false;
  let stripClose = false;
  const end = s.length - 2;
  let pos = eol + 2;
  while (pos < end) {
    eol = s.indexOf("\r\n", pos);
    const l = s.slice(pos, eol);
    pos = eol + 2;
    if (!FIELD_LINE.test(l)) {
      const c = l.charCodeAt(0);
      if (c === 32 || c === 9) return err(400, "obsolete line folding in the header section");
      return err(400, "invalid header line");
    }
    const colon = l.indexOf(":");
    switch (colon) {
      case 4:
        if (l.slice(0, 4).toLowerCase() === "host") {
          if (host !== undefined) return err(400, "more than one Host header");
          host = trimOws(l.slice(5));
          if (!HOST.test(host)) return err(400, "invalid Host header");
        }
        break;
      case 6:
        if (l.slice(0, 6).toLowerCase() === "expect" && trimOws(l.slice(7)).toLowerCase() === "100-continue") expectContinue = true;
        break;
      case 7:
        if (l.slice(0, 7).toLowerCase() === "upgrade") upgradeHeader = true;
        break;
      case 10:
        if (l.slice(0, 10).toLowerCase() === "connection") conn = conn === undefined ? l.slice(11) : `${conn},${l.slice(11)}`;
        break;
      case 14:
        if (l.slice(0, 14).toLowerCase() === "content-length") {
          if (cl >= 0) return err(400, "more than one Content-Length");
          const v = trimOws(l.slice(15));
          if (!CONTENT_LENGTH.test(v)) return err(400, "invalid Content-Length");
          cl = Number(v);
        }
        break;
      case 15:
        if (l.slice(0, 15).toLowerCase() === "x-forwarded-for") {
          const v = trimOws(l.slice(16));
          xff = xff === undefined ? v : `${xff}, ${v}`;
        }
        break;
      case 16:
        if (l.slice(0, 16).toLowerCase() === "x-forwarded-port") xfOther = true;
        break;
      case 17: {
        const n = l.slice(0, 17).toLowerCase();
        if (n === "transfer-encoding") te = te === undefined ? l.slice(18) : `${te},${l.slice(18)}`;
        else if (n === "x-forwarded-proto") xfOther = true;
        break;
      }
    }
  }
  let body = Body.None;
  let length = 0;
  if (te !== undefined) {
    if (cl >= 0) return err(400, "both Content-Length and Transfer-Encoding");
    if (minor === 0) return err(400, "Transfer-Encoding in an HTTP/1.0 request");
    const codings = listTokens(te);
    if (codings.length === 0 || codings[codings.length - 1] !== "chunked") {
      return err(400, "Transfer-Encoding whose final coding is not chunked");
    }
    for (let i = 0; i < codings.length - 1; i++) {
      if (codings[i] === "chunked" || !TOKEN.test(codings[i])) return err(400, "invalid Transfer-Encoding");
    }
    body = Body.Chunked;
  } else if (cl > 0) {
    body = Body.Length;
    length = cl;
  }
  let keepAlive = minor === 1;
  let upgrade = false;
  if (conn !== undefined) {
    const tokens = listTokens(conn);
    const close = tokens.includes("close");
    keepAlive = !close && (minor === 1 || tokens.includes("keep-alive"));
    if (close && minor === 1) stripClose = true;
    upgrade = upgradeHeader && tokens.includes("upgrade");
  }
  if (minor === 1 && host === undefined) return err(400, "HTTP/1.1 request without Host");
  let path = target;
  if (target.charCodeAt(0) !== 47 /* / */) {
    if (method === "CONNECT") return err(501, "CONNECT is not supported by a reverse proxy");
    if (target === "*") {
      if (method !== "OPTIONS") return err(400, "asterisk-form target outside OPTIONS");
    } else {
      const a = /^(https?):\/\/([^/?#]*)(.*)$/i.exec(target);
      if (!a) return err(400, "invalid request target");
      const authority = a[2];
      if (authority.includes("@") || !HOST.test(authority) || authority === "") return err(400, "invalid authority in the request target");
      const defaultPort = a[1].toLowerCase() === "https" ? "443" : "80";
      if (host !== undefined && !sameAuthority(authority, host, defaultPort)) {
        return err(400, "absolute-form target names another host than Host");
      }
      if (host === undefined) host = authority;
      path = a[3] === "" ? "/" : a[3].charCodeAt(0) === 47 ? a[3] : `/${a[3]}`;
    }
  }
  return {
    method,
    target,
    minor,
    host,
    body,
    length,
    keepAlive,
    upgrade,
    expectContinue,
    isHead: method === "HEAD",
    xff,
    xfOther,
    stripClose,
    path,
  };
}

export function isHttpError(x: unknown): x is HttpError {
  return typeof (x as HttpError).status === "number" && typeof (x as HttpError).reason === "string";
}

/**
 * Rewrites a request head for the server: drops the client's X-Forwarded-Proto/-Port, merges its
 * X-Forwarded-For chain with the client address, strips a `close` token from Connection (the server
 * connection is pooled; the client side is closed by the proxy). `add` is the block of lines to append
 * (each ending in CRLF); `clientAddr` undefined leaves the X-Forwarded-* headers alone.
 */
export function rewriteRequestHead(s: string, req: RequestHead, clientAddr: string | undefined, add: string): string {
  let eol = s.indexOf("\r\n");
  let out = s.slice(0, eol + 2);
  const end = s.length - 2;
  let pos = eol + 2;
  while (pos < end) {
    eol = s.indexOf("\r\n", pos);
    const colon = s.indexOf(":", pos);
    const n = colon - pos;
    let keep = true;
    if (clientAddr !== undefined && (n === 15 || n === 16 || n === 17)) {
      const name = s.slice(pos, colon).toLowerCase();
      if (name === "x-forwarded-for" || name === "x-forwarded-port" || name === "x-forwarded-proto") keep = false;
    } else if (n === 10 && req.stripClose && s.slice(pos, colon).toLowerCase() === "connection") {
      const rest = listTokens(s.slice(colon + 1, eol)).filter((t) => t !== "close");
      keep = false;
      if (rest.length) out += `Connection: ${rest.join(", ")}\r\n`;
    }
    if (keep) out += s.slice(pos, eol + 2);
    pos = eol + 2;
  }
  if (clientAddr !== undefined) {
    out += `X-Forwarded-For: ${req.xff !== undefined && req.xff !== "" ? `${req.xff}, ` : ""}${clientAddr}\r\n`;
  }
  return out + add + "\r\n";
}

export interface ResponseHead {
  status: number;
  minor: number;
  body: Body;
  length: number;
  /** The server keeps its connection open after this response. */
  keepAlive: boolean;
  /** The head must be rebuilt (cookie flags or HSTS to add). */
  edits: { at: number; text: string }[] | null;
  hasHsts: boolean;
}

export interface ResponseOptions {
  /** Cookie names whose Set-Cookie gains Secure and HttpOnly (TLS listeners), or null. */
  secureCookies: ReadonlySet<string> | null;
  /** Look for Strict-Transport-Security (TLS listeners with HSTS on). */
  wantHsts: boolean;
}

/** What a Set-Cookie value lacks: "" when it has both flags. */
function missingCookieFlags(v: string): string {
  let secure = false;
  let httpOnly = false;
  const parts = v.split(";");
  for (let i = 1; i < parts.length; i++) {
    const p = trimOws(parts[i]);
    const eq = p.indexOf("=");
    const a = trimOws(eq < 0 ? p : p.slice(0, eq)).toLowerCase();
    if (a === "secure") secure = true;
    else if (a === "httponly") httpOnly = true;
  }
  return (secure ? "" : "; Secure") + (httpOnly ? "" : "; HttpOnly");
}

/**
 * Parses a response head (latin1 text through its final CRLFCRLF). `isHeadRequest`: the request was HEAD, so
 * no body follows whatever the headers say.
 */
export function parseResponseHead(s: string, isHeadRequest: boolean, opts: ResponseOptions): ResponseHead | HttpError {
  let eol = s.indexOf("\r\n");
  const m = STATUS_LINE.exec(s.slice(0, eol));
  if (!m) return err(502, "malformed status line from the server");
  const minor = m[1] === "1" ? 1 : 0;
  const status = Number(m[2]);
  let cl = -1;
  let te: string | undefined;
  let conn: string | undefined;
  let hasHsts = false;
  let edits: { at: number; text: string }[] | null = null;
  const end = s.length - 2;
  let pos = eol + 2;
  while (pos < end) {
    eol = s.indexOf("\r\n", pos);
    const l = s.slice(pos, eol);
    if (!FIELD_LINE.test(l)) return err(502, "invalid header line from the server");
    const colon = l.indexOf(":");
    switch (colon) {
      case 10:
        if (l.slice(0, 10).toLowerCase() === "connection") conn = conn === undefined ? l.slice(11) : `${conn},${l.slice(11)}`;
        else if (opts.secureCookies && l.slice(0, 10).toLowerCase() === "set-cookie") {
          const v = trimOws(l.slice(11));
          const eq = v.indexOf("=");
          if (eq > 0 && opts.secureCookies.has(trimOws(v.slice(0, eq)))) {
            const add = missingCookieFlags(v);
            if (add) (edits ??= []).push({ at: pos + 11 + l.slice(11).trimEnd().length, text: add });
          }
        }
        break;
      case 14:
        if (l.slice(0, 14).toLowerCase() === "content-length") {
          const v = trimOws(l.slice(15));
          if (!CONTENT_LENGTH.test(v)) return err(502, "invalid Content-Length from the server");
          const n = Number(v);
          if (cl >= 0 && cl !== n) return err(502, "differing Content-Length from the server");
          cl = n;
        }
        break;
      case 17:
        if (l.slice(0, 17).toLowerCase() === "transfer-encoding") te = te === undefined ? l.slice(18) : `${te},${l.slice(18)}`;
        break;
      case 25:
        if (opts.wantHsts && l.slice(0, 25).toLowerCase() === "strict-transport-security") hasHsts = true;
        break;
    }
    pos = eol + 2;
  }
  let body: Body;
  let length = 0;
  if (isHeadRequest || status < 200 || status === 204 || status === 304) body = Body.None;
  else if (te !== undefined) {
    const codings = listTokens(te);
    body = codings[codings.length - 1] === "chunked" ? Body.Chunked : Body.Close;
  } else if (cl >= 0) {
    body = cl === 0 ? Body.None : Body.Length;
    length = cl;
  } else body = Body.Close;
  let keepAlive = minor === 1;
  if (conn !== undefined) {
    const tokens = listTokens(conn);
    if (tokens.includes("close")) keepAlive = false;
    else if (minor === 0 && tokens.includes("keep-alive")) keepAlive = true;
  }
  // A body delimited by the close, or framed by chunked and Content-Length together, ends the connection.
  if (body === Body.Close || (te !== undefined && cl >= 0)) keepAlive = false;
  return { status, minor, body, length, keepAlive, edits, hasHsts };
}

/** Applies insertions (sorted by position) to a head string. */
export function applyEdits(s: string, edits: { at: number; text: string }[]): string {
  let out = "";
  let last = 0;
  for (const e of edits) {
    out += s.slice(last, e.at) + e.text;
    last = e.at;
  }
  return out + s.slice(last);
}
