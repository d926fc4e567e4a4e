/**
 * A tiny stand-in for the EC2 Query API and the instance metadata service (IMDSv2), on loopback, for the
 * tests of scripts/ha/ with the real AWS CLI. It records every call and answers the actions the HA pair uses
 * the way EC2 does (form-encoded POST in, XML out): AssignPrivateIpAddresses, AssociateAddress, CreateTags
 * (the notify script publishing the node's VRRP state) and DescribeInstances (the deploy-side handover reading
 * it, tag and state filters applied). With `ssm`, the same server answers SSM's JSON protocol (X-Amz-Target
 * AmazonSSM.SendCommand) and hands each command to `onSendCommand`. `failNext` makes the next calls fail with
 * EC2's error document.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface Ec2Call {
  action: string;
  params: Record<string, string>;
  /** The SigV4 credential scope's region (from the Authorization header). */
  region: string | undefined;
  /** When it arrived (ms since the epoch). */
  at: number;
}

/** An instance as DescribeInstances shows it; CreateTags changes its tags. */
export interface StubInstance {
  id: string;
  state: "pending" | "running" | "terminated";
  tags: Record<string, string>;
}

export interface Ec2Stub {
  url: string;
  calls: Ec2Call[];
  instances: StubInstance[];
  /** The next n calls answer 503 RequestLimitExceeded. */
  failNext(n: number): void;
  close(): Promise<void>;
}

export interface Ec2StubOptions {
  instances?: StubInstance[];
  /** SSM SendCommand: called with the instance ids and the command lines. */
  onSendCommand?(instanceIds: string[], commands: string[]): void;
}

export async function startEc2Stub(address: string, opts: Ec2StubOptions = {}): Promise<Ec2Stub> {
  const calls: Ec2Call[] = [];
  const instances = opts.instances ?? [];
  let failures = 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      const target = String(req.headers["x-amz-target"] ?? "");
      if (target.startsWith("AmazonSSM.")) {
        const doc = JSON.parse(body || "{}") as { InstanceIds?: string[]; DocumentName?: string; Parameters?: { commands?: string[] } };
        const action = target.slice("AmazonSSM.".length);
        calls.push({ action: `ssm:${action}`, params: { body }, region: /Credential=[^/]+\/\d{8}\/([^/]+)\/ssm\//.exec(String(req.headers.authorization ?? ""))?.[1], at: Date.now() });
        res.setHeader("content-type", "application/x-amz-json-1.1");
        if (action !== "SendCommand") {
          res.statusCode = 400;
          res.end(JSON.stringify({ __type: "InvalidAction", message: `${action} is not stubbed` }));
          return;
        }
        opts.onSendCommand?.(doc.InstanceIds ?? [], doc.Parameters?.commands ?? []);
        res.end(JSON.stringify({ Command: { CommandId: `cmd-${calls.length}`, DocumentName: doc.DocumentName, InstanceIds: doc.InstanceIds, Status: "Pending" } }));
        return;
      }
      const params = Object.fromEntries(new URLSearchParams(body));
      const action = params.Action ?? "";
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\/ec2\//.exec(String(req.headers.authorization ?? ""))?.[1];
      calls.push({ action, params, region, at: Date.now() });
      const requestId = `req-${calls.length}`;
      res.setHeader("content-type", "text/xml;charset=UTF-8");
      if (failures > 0) {
        failures--;
        res.statusCode = 503;
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
        );
        return;
      }
      const ns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"';
      if (action === "AssignPrivateIpAddresses") {
        const ips = Object.keys(params)
          .filter((k) => /^PrivateIpAddress\.\d+$/.test(k))
          .map((k) => `<item><privateIpAddress>${params[k]}</privateIpAddress></item>`)
          .join("");
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<AssignPrivateIpAddressesResponse ${ns}><requestId>${requestId}</requestId><networkInterfaceId>${params.NetworkInterfaceId}</networkInterfaceId><assignedPrivateIpAddressesSet>${ips}</assignedPrivateIpAddressesSet><assignedIpv4PrefixSet/></AssignPrivateIpAddressesResponse>`,
        );
      } else if (action === "AssociateAddress") {
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<AssociateAddressResponse ${ns}><requestId>${requestId}</requestId><return>true</return><associationId>eipassoc-0123456789abcdef0</associationId></AssociateAddressResponse>`,
        );
      } else if (action === "CreateTags") {
        const ids = Object.keys(params).filter((k) => /^ResourceId\.\d+$/.test(k)).map((k) => params[k]);
        for (const id of ids) {
          let inst = instances.find((i) => i.id === id);
          if (!inst) instances.push((inst = { id, state: "running", tags: {} })); // an instance the test did not list
          for (const k of Object.keys(params).filter((x) => /^Tag\.\d+\.Key$/.test(x))) inst.tags[params[k]] = params[k.replace(/Key$/, "Value")] ?? "";
        }
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<CreateTagsResponse ${ns}><requestId>${requestId}</requestId><return>true</return></CreateTagsResponse>`);
      } else if (action === "DescribeInstances") {
        const filters: { name: string; values: string[] }[] = [];
        for (const k of Object.keys(params).filter((x) => /^Filter\.\d+\.Name$/.test(x))) {
          const n = k.replace(/\.Name$/, "");
          filters.push({ name: params[k], values: Object.keys(params).filter((x) => x.startsWith(`${n}.Value.`)).map((x) => params[x]) });
        }
        const match = (i: StubInstance) =>
          filters.every((f) =>
            f.name === "instance-state-name" ? f.values.includes(i.state) : f.name.startsWith("tag:") ? f.values.includes(i.tags[f.name.slice(4)]) : true,
          );
        const esc = (v: string) => v.replace(/&/g, "&amp;").replace(/</g, "&lt;");
        const items = instances
          .filter(match)
          .map(
            (i) =>
              `<item><reservationId>r-${i.id.slice(2)}</reservationId><ownerId>123456789012</ownerId><instancesSet><item><instanceId>${i.id}</instanceId><instanceState><code>16</code><name>${i.state}</name></instanceState><tagSet>${Object.entries(i.tags)
                .map(([k, v]) => `<item><key>${esc(k)}</key><value>${esc(v)}</value></item>`)
                .join("")}</tagSet></item></instancesSet></item>`,
          )
          .join("");
        res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse ${ns}><requestId>${requestId}</requestId><reservationSet>${items}</reservationSet></DescribeInstancesResponse>`);
      } else {
        res.statusCode = 400;
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InvalidAction</Code><Message>The action ${action} is not valid for this web service.</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
        );
      }
    });
  });
  const url = await listen(server, address);
  return { url, calls, instances, failNext: (n) => (failures = n), close: () => close(server) };
}

export interface ImdsStub {
  url: string;
  /** Every request: method, path, whether it carried the session token. */
  requests: { method: string; path: string; token: boolean }[];
  close(): Promise<void>;
}

/** IMDSv2: PUT /latest/api/token first; meta-data only with that token (401 without, as IMDSv2 enforces). */
export async function startImdsStub(address: string, data: Record<string, string>): Promise<ImdsStub> {
  const token = "stub-imds-token-0123456789";
  const requests: ImdsStub["requests"] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? "";
    const sent = req.headers["x-aws-ec2-metadata-token"] === token;
    requests.push({ method: req.method ?? "", path, token: sent });
    if (req.method === "PUT" && path === "/latest/api/token" && req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) {
      res.end(token);
      return;
    }
    if (req.method !== "GET" || !sent) {
      res.statusCode = 401;
      res.end();
      return;
    }
    const key = path.replace(/^\/latest\/meta-data\//, "");
    if (key in data) res.end(data[key]);
    else {
      res.statusCode = 404;
      res.end();
    }
  });
  const url = await listen(server, address);
  return { url, requests, close: () => close(server) };
}

function listen(server: http.Server, address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, () => resolve(`http://${address}:${(server.address() as AddressInfo).port}`));
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
