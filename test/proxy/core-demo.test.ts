/**
 * `ctera-lb demo` in-process: it must show distribution, persistence on all three ports, and a failover in
 * which only the stopped server's clients move, then exit 0. Uses 127.0.0.10-13 and 127.0.1.x (the demo's own).
 */
import { demoCommand } from "../../src/demo";

test("the demo runs the ssl-on-portal session end to end and exits 0", async () => {
  let text = "";
  const code = await demoCommand([], { stdout: (s) => (text += s) });
  expect(text).toMatch(/1\) Distribution/);
  expect(text).toMatch(/30 of 30 clients reached the same server on all three ports/);
  expect(text).toMatch(/marked DOWN after/);
  expect(text).toMatch(/(\d+) of \1 clients of portal-\d moved to another server; (\d+) of \2 other clients stayed/);
  expect(text).toMatch(/no connection failed/);
  expect(code).toBe(0);
});
