/**
 * TLS termination settings. Built once per factory call: a reload builds a new context (new certificate for
 * new connections) while open connections keep the context they were accepted with.
 */
import { TLS12_CIPHERS, TLS13_CIPHERSUITES } from "../../config/tls";
import { readFileSync } from "node:fs";
import { randomBytes, constants as C } from "node:crypto";
import * as tls from "node:tls";
import type { Socket } from "node:net";
import type { TlsFiles } from "../../config";

/**
 * TLS 1.3 suites, then TLS 1.2 with ECDHE (forward secrecy) and AEAD only: no RC4, no 3DES, no CBC, no
 * static RSA key exchange, no SHA-1 MACs. This is Mozilla's "intermediate" profile without DHE.
 */
export const CIPHERS = `${TLS13_CIPHERSUITES}:${TLS12_CIPHERS}`;

/**
 * Session-ticket keys live as long as the process, not the context: a reload must not turn every returning
 * client's resumption into a full handshake. `serve` gives its workers the primary's keys (over IPC, before
 * their first context), so a client resumes whichever process accepts its next connection.
 */
let TICKET_KEYS = randomBytes(48);

/** This process's session-ticket keys (48 bytes: name, HMAC secret, AES key). */
export function ticketKeys(): Buffer {
  return TICKET_KEYS;
}

/** Use these keys for contexts built from now on (a serve worker takes the primary's). */
export function setTicketKeys(keys: Buffer): void {
  if (keys.length !== 48) throw new Error(`session-ticket keys are 48 bytes, got ${keys.length}`);
  TICKET_KEYS = Buffer.from(keys);
}

export function buildSecureContext(files: TlsFiles): tls.SecureContext {
  const cert = readFileSync(files.certFile);
  const key = readFileSync(files.keyFile);
  const ctx = tls.createSecureContext({
    cert,
    key,
    minVersion: "TLSv1.2",
    ciphers: CIPHERS,
    honorCipherOrder: true,
    ecdhCurve: "X25519:prime256v1:secp384r1",
    ticketKeys: TICKET_KEYS,
    sessionTimeout: 3600,
    sessionIdContext: "ctera-portal-lb",
    secureOptions: (C.SSL_OP_NO_RENEGOTIATION ?? 0) | (C.SSL_OP_NO_COMPRESSION ?? 0),
  });
  renewTicketsOnResumption(ctx, TICKET_KEYS);
  return ctx;
}

/** Ticket IVs are cut from a block of CSPRNG bytes drawn 256 IVs at a time: one RAND_bytes call (and its
 * locks) per 256 tickets instead of one per ticket, i.e. per TLS connection (1.6% of our CPU-profile samples
 * under the benchmark's new TLS connections). */
const IV_BLOCK = 16 * 256;
let ivBlock = Buffer.alloc(0);
let ivAt = 0;

/** A fresh 16-byte ticket IV (never the same one twice: each comes from a new part of a random block). */
export function ticketIv(): Buffer {
  if (ivAt >= ivBlock.length) {
    ivBlock = randomBytes(IV_BLOCK);
    ivAt = 0;
  }
  ivAt += 16;
  return ivBlock.subarray(ivAt - 16, ivAt);
}

/** The part of Node's native secure context (the object behind `SecureContext.context`) used below. */
interface TicketKeyHook {
  enableTicketKeyCallback: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

/** The context's ticket-key hook, when this Node has it and renewal is not switched off. */
function ticketKeyHook(ctx: tls.SecureContext): TicketKeyHook | undefined {
  if (process.env.CTERA_LB_TLS_TICKET_RENEW === "off") return undefined;
  const native = (ctx as unknown as { context?: Partial<TicketKeyHook> }).context;
  return native && typeof native.enableTicketKeyCallback === "function" ? (native as TicketKeyHook) : undefined;
}

/** Whether contexts built here renew tickets on resumption (the started log line says it). */
export const tlsTicketRenewal = (): boolean => ticketKeyHook(tls.createSecureContext({})) !== undefined;

/**
 * A resumed session gets a new ticket, as HAProxy's default session cache gives one. Node's own ticket
 * handling (the `ticketKeys` option) sends none after a TLS 1.3 resumption, so a client that keeps only its
 * latest ticket (OpenSSL's s_client, wrk, many OpenSSL-based agents: TLS 1.3 tickets are meant for one use)
 * resumed every other reconnection and did a full handshake — an RSA signature on the load balancer — in
 * between. Here the same keys (name | HMAC secret | AES key, the `ticketKeys` layout, so tickets from either
 * path decrypt in the other) go through Node's ticket-key callback, which can answer "decrypted, renew".
 *
 * That callback is Node's internal interface (no public API sets it): it is used only when present, else the
 * context keeps Node's behaviour. `CTERA_LB_TLS_TICKET_RENEW=off` keeps it too. True when renewal is on.
 */
export function renewTicketsOnResumption(ctx: tls.SecureContext, keys: Buffer): boolean {
  const native = ticketKeyHook(ctx);
  if (!native) return false;
  const name = Buffer.from(keys.subarray(0, 16));
  const hmac = Buffer.from(keys.subarray(16, 32));
  const aes = Buffer.from(keys.subarray(32, 48));
  // OpenSSL's contract: 1 = ticket made (encrypt) or decrypted, 2 = decrypted and a new one should be issued,
  // 0 = not ours (a full handshake follows). Encrypt also returns the key name and a fresh IV. Node reads
  // the HMAC and AES entries whatever the answer (a missing one would abort the process), so they always go.
  native.onticketkeycallback = (keyName, _iv, encrypt) => {
    if (encrypt) return [1, hmac, aes, name, ticketIv()];
    return [keyName.equals(name) ? 2 : 0, hmac, aes];
  };
  native.enableTicketKeyCallback();
  return true;
}

/** Wraps an accepted raw socket as the server side of a TLS connection. */
export function wrapServerSocket(raw: Socket, secureContext: tls.SecureContext): tls.TLSSocket {
  return new tls.TLSSocket(raw, {
    isServer: true,
    secureContext,
    ALPNProtocols: ["http/1.1"],
    requestCert: false,
    rejectUnauthorized: false,
  });
}
