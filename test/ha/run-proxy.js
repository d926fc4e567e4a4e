// Runs the proxy of this checkout (dist/) in one process from a runtime config file, for the HA netns test
// while `ctera-lb serve` is not wired yet: startProxy() is the same core (listeners, rendezvous placement,
// persistence, health checks, admin API with /healthz) that serve runs in its workers.
// Usage: node run-proxy.js --config <file>
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const root = join(__dirname, "..", "..");
const { validateRuntimeConfig } = require(join(root, "dist", "src", "config"));
const { startProxy } = require(join(root, "dist", "src", "proxy"));
const file = process.argv[process.argv.indexOf("--config") + 1];
startProxy(validateRuntimeConfig(JSON.parse(readFileSync(file, "utf8")), { checkFiles: false })).then(
  (p) => {
    const stop = () => p.close().then(() => process.exit(0));
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  },
  (e) => {
    console.error(e && e.stack ? e.stack : String(e));
    process.exit(1);
  },
);
