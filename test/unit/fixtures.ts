import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCert {
  dir: string;
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  cleanup(): void;
}

/** A throw-away self-signed EC certificate made with the openssl command line. */
export function makeCert(cn = "portal.example.test"): TestCert {
  const dir = mkdtempSync(join(tmpdir(), "ctera-lb-cert-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", `/CN=${cn}`,
  ], { stdio: "ignore" });
  return {
    dir, certFile, keyFile,
    cert: readFileSync(certFile, "utf8"),
    key: readFileSync(keyFile, "utf8"),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
