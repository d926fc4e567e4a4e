import { X509Certificate, createPrivateKey } from "node:crypto";

/**
 * The one cipher policy of both engines (our proxy and the rendered haproxy.cfg): TLS 1.2 with ECDHE
 * (forward secrecy) and AEAD only — no RC4, 3DES, CBC, static RSA or SHA-1 MACs, as CTERA asks — and the
 * TLS 1.3 suites. Mozilla's "intermediate" profile without DHE.
 */
export const TLS12_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");
export const TLS13_CIPHERSUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/**
 * Checks that a certificate and a key are PEM and belong together. Returns a list of problems (empty when
 * fine), each with the fix, so callers can attach their own field paths.
 */
export function checkTlsPair(certPem: string, keyPem: string): { field: "cert" | "key"; message: string }[] {
  const problems: { field: "cert" | "key"; message: string }[] = [];
  let cert: X509Certificate | undefined;
  if (!/-----BEGIN CERTIFICATE-----/.test(certPem)) {
    problems.push({ field: "cert", message: "not a PEM certificate: expected '-----BEGIN CERTIFICATE-----'" });
  } else {
    try {
      cert = new X509Certificate(certPem);
    } catch (e) {
      problems.push({ field: "cert", message: `the certificate does not parse (${(e as Error).message})` });
    }
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(keyPem)) {
    problems.push({ field: "key", message: "not a PEM private key: expected '-----BEGIN ... PRIVATE KEY-----'" });
    return problems;
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    problems.push({ field: "key", message: `the private key does not parse (${(e as Error).message}); an encrypted key is not supported` });
    return problems;
  }
  if (cert && !cert.checkPrivateKey(key)) {
    problems.push({ field: "key", message: "the private key does not belong to the certificate: give the key the certificate was issued for" });
  }
  return problems;
}
