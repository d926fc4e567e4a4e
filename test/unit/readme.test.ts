import { readFileSync } from "node:fs";
import { join } from "node:path";
import { configReferenceMarkdown, REFERENCE_END, REFERENCE_START } from "../../src/config";

const readme = readFileSync(join(__dirname, "..", "..", "README.md"), "utf8");

describe("README", () => {
  test("its config reference is the one generated from the schema (run scripts/config-reference.js --write)", () => {
    const a = readme.indexOf(REFERENCE_START) + REFERENCE_START.length;
    const b = readme.indexOf(REFERENCE_END);
    expect(readme.slice(a, b).trim()).toBe(configReferenceMarkdown().trim());
  });

  test("gives the two set-up commands and .ci/run runs exactly its test command", () => {
    expect(readme).toContain("npm ci && npm run demo");
    const ci = readFileSync(join(__dirname, "..", "..", ".ci", "run"), "utf8");
    expect(ci).toMatch(/^npm ci\b/m);
    expect(ci).toMatch(/^npm test$/m);
    expect(readme).toMatch(/^npm test\s/m);
  });
});
