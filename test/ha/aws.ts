/**
 * The AWS CLI as the HA scripts' tests run it: Debian's awscli, dummy credentials, no config files, the CLI's
 * own metadata lookups and retries off (nothing leaves loopback or the test's namespace; the scripts' own
 * retries are what is tested), and a way to run a script and collect its exit code and stderr.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

/** Debian's awscli package (what scripts/install-test-deps installs). */
export function awsCli(): string {
  if (existsSync("/usr/bin/aws")) return "/usr/bin/aws";
  throw new Error("the AWS CLI is not installed: run scripts/install-test-deps (as root; Debian package awscli)");
}

/** The environment a script under test gets: PATH, a scratch HOME, dummy credentials, then `extra`. */
export function awsTestEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: home,
    AWS_CLI: awsCli(),
    AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    AWS_DEFAULT_REGION: "eu-west-1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/dev/null",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_MAX_ATTEMPTS: "1",
    AWS_RETRY_MODE: "standard",
    NO_PROXY: "*",
    ...extra,
  };
}

/** Runs a script to its end (SIGKILLed after `limitMs`): its exit code and stderr. */
export function runScript(path: string, args: string[], env: NodeJS.ProcessEnv, limitMs = 100_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((done, reject) => {
    const p = spawn(path, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const timer = setTimeout(() => p.kill("SIGKILL"), limitMs);
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stderr });
    });
  });
}
