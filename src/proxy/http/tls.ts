/**
 * TLS termination settings. Built once per factory call: a reload builds a new context (new certificate for
 * new connections) while open connections keep the context they were accepted with.
 */
import { TLS12_CIPHERS, TLS13_CIPHERSUITES } from "../../config/tls";
import cluster from "node:cluster";
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

/** The environment variable through which cluster workers inherit the primary's session-ticket keys. */
export const TICKET_KEYS_ENV = "CTERA_LB_TLS_TICKET_KEYS";

/**
 * Session-ticket keys live as long as the proxy, not the context (a reload must not turn every returning
 * client's resumption into a full handshake), and are the same in every worker: a returning client resumes on
 * whichever worker the kernel hands its next connection to. With keys per worker, a resumption succeeded only
 * when it landed on the worker that issued the ticket (1 in N) and cost a full RSA handshake otherwise.
 *
 * The primary makes the keys when it loads this module, before it forks, and leaves them in its environment;
 * cluster.fork() copies the environment into each worker (a restarted worker gets the same keys). A worker
 * takes them and removes them from its own environment. Any other process (a test, a single-process run)
 * makes its own.
 */
function ticketKeys(): Buffer {
  if (cluster.isWorker) {
    const inherited = process.env[TICKET_KEYS_ENV];
    delete process.env[TICKET_KEYS_ENV];
    const keys = inherited ? Buffer.from(inherited, "base64") : undefined;
    if (keys && keys.length === 48) return keys;
  }
  const keys = randomBytes(48);
  if (cluster.isPrimary) process.env[TICKET_KEYS_ENV] = keys.toString("base64");
  return keys;
}
const TICKET_KEYS = ticketKeys();

export function buildSecureContext(files: TlsFiles): tls.SecureContext {
  const cert = readFileSync(files.certFile);
  const key = readFileSync(files.keyFile);
  return tls.createSecureContext({
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
