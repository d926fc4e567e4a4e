/**
 * `ctera-lb`: render | validate | schema | serve | plan | demo. Output on stdout, errors on stderr;
 * bad input exits 2 with nothing on stdout. Each subcommand's heavy module is loaded only when used, so the
 * proxy image (serve) never loads @pulumi/*.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConfigError, render, runtimeConfigJsonSchema, validateRuntimeConfig } from "./config";
import type { RenderInputs } from "./config";

export const USAGE = `usage:
  ctera-lb render --design ssl-on-portal|ssl-on-lb --vip <ip> --real-server <ip> [--real-server <ip> ...]
                  [--source-address <ip>] [--tls-cert <pem file> --tls-key <pem file>] [--admin <ip:port>]
                  [--health-host <name>]
  ctera-lb validate <config.json>
  ctera-lb schema
  ctera-lb serve --config <config.json> [--workers N]
  ctera-lb plan --stack ssl-on-portal|ssl-on-lb
  ctera-lb demo
`;

/** A usage or input error: exit 2, message on stderr. */
export class UsageError extends Error {}

type Out = { stdout: (s: string) => void; stderr: (s: string) => void };
const defaultOut: Out = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
};

export async function main(argv: string[], out: Out = defaultOut): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case "render":
        out.stdout(JSON.stringify(renderFromArgs(rest), null, 2) + "\n");
        return 0;
      case "validate":
        return validateCommand(rest, out);
      case "schema":
        parseArgs({ args: rest, strict: true, options: {} }); // takes no arguments: a typo is an error, not ignored
        out.stdout(JSON.stringify(runtimeConfigJsonSchema(), null, 2) + "\n");
        return 0;
      case "serve":
        return await (await import("./proxy/main")).serveCommand(rest);
      case "plan":
        return await (await import("./plan")).planCommand(rest, out);
      case "demo":
        parseArgs({ args: rest, strict: true, options: {} });
        return await (await import("./demo")).demoCommand(rest, out);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        out.stdout(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
      out.stderr(`ctera-lb ${cmd}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      out.stderr(`ctera-lb ${cmd ?? ""}: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
}

export function renderFromArgs(args: string[]) {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      design: { type: "string" },
      vip: { type: "string" },
      "real-server": { type: "string", multiple: true },
      "source-address": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      admin: { type: "string" },
      "admin-token": { type: "string" },
      "health-host": { type: "string" },
    },
  });
  if (!values.design) throw new UsageError("--design is required: ssl-on-portal or ssl-on-lb");
  if (!values.vip) throw new UsageError("--vip is required: the virtual IP clients connect to");
  if (!values["real-server"]?.length) throw new UsageError("--real-server is required (once per Portal server)");
  if (!!values["tls-cert"] !== !!values["tls-key"]) throw new UsageError("--tls-cert and --tls-key go together");
  const inputs: RenderInputs = {
    design: values.design as RenderInputs["design"],
    vip: values.vip,
    realServers: values["real-server"],
    ...(values["source-address"] ? { sourceAddress: values["source-address"] } : {}),
    ...(values["tls-cert"] ? { tls: { certFile: values["tls-cert"], keyFile: values["tls-key"]! } } : {}),
    ...(values["health-host"] ? { healthCheck: { host: values["health-host"] } } : {}),
  };
  if (values.admin || values["admin-token"]) {
    const admin: NonNullable<RenderInputs["admin"]> = {};
    if (values.admin) {
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(values.admin);
      if (!m) throw new UsageError("--admin takes <ip:port>, e.g. 127.0.0.1:9090");
      admin.address = m[1];
      admin.port = Number(m[2]);
    }
    if (values["admin-token"]) admin.token = values["admin-token"];
    inputs.admin = admin;
  }
  return render(inputs);
}

function validateCommand(args: string[], out: Out): number {
  const { positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: {} });
  if (positionals.length !== 1) throw new UsageError("validate takes one config file");
  const file = positionals[0];
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new ConfigError([{ path: "", message: `cannot read ${file} as JSON (${(e as Error).message})` }]);
  }
  const cfg = validateRuntimeConfig(doc);
  const ports = cfg.virtualServices.map((v) => `${v.name} (${v.mode}: ${v.listeners.map((l) => l.port).join(", ")})`);
  out.stdout(`ok: ${file}: ${cfg.virtualServices.length} virtual service(s): ${ports.join("; ")}\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`ctera-lb: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
