/**
 * The EC2 stub as a process (for a network namespace): `node ec2-stub-main.js <address> <calls.json> [fail n]`
 * prints {"url": ...} once listening, keeps <calls.json> (a JSON array of the calls so far) current within
 * 50 ms, exits on SIGTERM.
 */
import { renameSync, writeFileSync } from "node:fs";
import { startEc2Stub } from "./ec2-stub";

async function main(): Promise<void> {
  const [address, out, fail] = process.argv.slice(2);
  const stub = await startEc2Stub(address);
  if (fail) stub.failNext(Number(fail));
  const save = () => {
    writeFileSync(`${out}.tmp`, JSON.stringify(stub.calls));
    renameSync(`${out}.tmp`, out); // readers never see half a file
  };
  save();
  setInterval(save, 50);
  process.on("SIGTERM", () => {
    save();
    void stub.close().then(() => process.exit(0));
  });
  console.log(JSON.stringify({ url: stub.url }));
}
void main();
