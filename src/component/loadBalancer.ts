/**
 * CteraPortalLoadBalancer: the load balancer VM(s) for a CTERA Portal cluster on AWS, in the one-arm or
 * two-arm layout, with security groups derived from the rendered proxy config, a reproducible proxy image,
 * and config delivery that reloads the proxy instead of replacing the VM.
 *
 * Resource map (children of the component, stable names):
 *   <name>-image            command:local:Command   runs scripts/build-image → sha256 + tarball
 *   <name>-artifacts        aws:s3:Bucket (+ -versioning, -encryption, -public-access-block, -ownership, -tls-only)
 *   <name>-image-object     aws:s3:BucketObjectv2   images/ctera-lb-<sha256>.tar.gz
 *   <name>-config-object    aws:s3:BucketObjectv2   config/config.json (stable key; the VM polls its ETag)
 *   <name>-tls              aws:secretsmanager:Secret (+ -tls-version)   when tls is given as PEM
 *   <name>-client / -internal  aws:ec2:SecurityGroup, rules as aws:vpc:SecurityGroup{Ingress,Egress}Rule
 *   <name>-role, -role-policy, -ssm-core, -profile   IAM
 *   <name>-vip              aws:ec2:NetworkInterface  holds the VIP until the VM claims it (auto VIP only)
 *   <name>-vip-eip (+ -vip-eip-assoc)                 publicVip
 *   <name>-vm-0-eth0, -vm-0-eth1, -vm-0-eth1-attach, -vm-0   the VM and its interfaces
 *   highAvailability: -vm-1..., -ha-vm-N (keepalived.conf), -ha-peer-vm-N (the peer for the persistence sync),
 *                     VRRP and persistence-sync rules between the pair, -handover-vm-N command:local:Command
 *                     (the rolling order: handover-vm-1 → vm-1 → handover-vm-0 → vm-0)
 */
import * as path from "node:path";
import * as fs from "node:fs";
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import * as command from "@pulumi/command";
import { ConfigError, RenderInputs, RuntimeConfig, checkTlsPair, render, renderKeepalivedConfig } from "../config";
import { CteraPortalLoadBalancerArgs, ParsedArgs, parseComponentArgs } from "./args";
import { SSM_MANAGED_POLICY_ARN_SUFFIX, assumeRolePolicy, instancePolicy } from "./policy";
import { TrafficModel, deriveTraffic, hostCidr } from "./traffic";
import { renderUserData } from "./userdata";
import { COMPONENT_TYPE, CONFIG_OBJECT_KEY, DEPLOYMENT_TAG, HA_NODE_TAG, TLS_CERT_PATH, TLS_KEY_PATH, VRRP_TAGS, haPeerObjectKey, isGraviton } from "./constants";

/** Only used to render at construction (ports and validation do not depend on the VIP). */
const PLACEHOLDER_VIP = "192.0.2.1";

export class CteraPortalLoadBalancer extends pulumi.ComponentResource {
  /** The VIP: a secondary private IP on the client-facing ENI (eth0 one-arm, eth1 two-arm). */
  readonly vipAddress: pulumi.Output<string>;
  /** The Elastic IP of the VIP (publicVip only). */
  readonly publicVip: pulumi.Output<string | undefined>;
  readonly instanceIds: pulumi.Output<string[]>;
  readonly securityGroupIds: pulumi.Output<string[]>;
  /** sha256 of the proxy image tarball the VMs verify before they run it. */
  readonly imageHash: pulumi.Output<string>;
  /** The rendered runtime config (JSON) as stored for the VMs. */
  readonly proxyConfig: pulumi.Output<string>;
  /** The admin API / status page on the (first) VM's internal address. */
  readonly adminUrl: pulumi.Output<string>;
  /** Every VM's admin API (two with highAvailability). */
  readonly adminUrls: pulumi.Output<string[]>;
  readonly bucketName: pulumi.Output<string>;
  /** Ports and flows the security groups were derived from. */
  readonly traffic: TrafficModel;

  constructor(name: string, args: CteraPortalLoadBalancerArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super(COMPONENT_TYPE, name, {}, opts);
    // Validate everything before the first child exists: a bad arg leaves nothing half-created.
    const a = parseComponentArgs(name, args);
    checkPlainTls(name, a);
    const design = renderConfig(name, a, PLACEHOLDER_VIP);
    this.traffic = deriveTraffic(design);

    const parent = { parent: this };
    const deployment = `${pulumi.getProject()}/${pulumi.getStack()}/${name}`;
    const tags = sharedTags(a, deployment);
    const twoArm = a.network.layout === "two-arm";
    const clientSubnet = a.network.layout === "two-arm" ? a.network.externalSubnetId : a.network.subnetId;
    const internalSubnet = a.network.layout === "two-arm" ? a.network.internalSubnetId : a.network.subnetId;

    const region = aws.getRegionOutput({}, parent).region;
    const identity = aws.getCallerIdentityOutput({}, parent);
    const partition = aws.getPartitionOutput({}, parent).partition;

    // --- image -------------------------------------------------------------------------------------
    const root = packageRoot();
    const build = new command.local.Command(
      `${name}-image`,
      {
        create: "node scripts/build-image --out .ctera-lb-build",
        dir: root,
        // Re-run when a source of the image changes; the hash (not this digest) decides replacements.
        triggers: [imageSourceDigest(root)],
        assetPaths: [".ctera-lb-build/ctera-lb-image.tar.gz"],
        logging: "stderr",
      },
      parent,
    );
    const built = build.stdout.apply(parseBuildOutput);
    const imageHash = built.sha256;

    // --- artifact bucket ---------------------------------------------------------------------------
    const bucket = new aws.s3.Bucket(`${name}-artifacts`, { bucketPrefix: "ctera-lb-", forceDestroy: false, tags }, parent);
    const bucketParent = { parent: bucket };
    const pab = new aws.s3.BucketPublicAccessBlock(
      `${name}-public-access-block`,
      { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
      bucketParent,
    );
    const ownership = new aws.s3.BucketOwnershipControls(
      `${name}-ownership`,
      { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } },
      bucketParent,
    );
    // SSE-S3: encrypted at rest without a KMS key, so the instance role needs no kms:Decrypt.
    const sse = new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-encryption`,
      { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }] },
      bucketParent,
    );
    const versioning = new aws.s3.BucketVersioning(
      `${name}-versioning`,
      { bucket: bucket.id, versioningConfiguration: { status: "Enabled" } },
      bucketParent,
    );
    const tlsOnly = new aws.s3.BucketPolicy(
      `${name}-tls-only`,
      {
        bucket: bucket.id,
        policy: bucket.arn.apply((arn) =>
          JSON.stringify({
            Version: "2012-10-17",
            Statement: [
              {
                Sid: "DenyInsecureTransport",
                Effect: "Deny",
                Principal: "*",
                Action: "s3:*",
                Resource: [arn, `${arn}/*`],
                Condition: { Bool: { "aws:SecureTransport": "false" } },
              },
            ],
          }),
        ),
      },
      { parent: bucket, dependsOn: [pab] },
    );
    const bucketReady = [pab, ownership, sse, versioning, tlsOnly];

    const imageKey = pulumi.interpolate`images/ctera-lb-${imageHash}.tar.gz`;
    const imageObject = new aws.s3.BucketObjectv2(
      `${name}-image-object`,
      {
        bucket: bucket.id,
        key: imageKey,
        source: pulumi.all([build.assets, built.file]).apply(([assets, file]) => assets?.[file] ?? new pulumi.asset.FileAsset(path.join(root, file))),
        contentType: "application/gzip",
        // The VM verifies this same hash before it runs the image.
        metadata: { sha256: imageHash },
        tags,
      },
      { parent: bucket, dependsOn: bucketReady },
    );

    // --- TLS secret --------------------------------------------------------------------------------
    let tlsSecretArn: pulumi.Output<string> | undefined;
    if (a.tls && "secretArn" in a.tls) {
      tlsSecretArn = pulumi.output(a.tls.secretArn);
    } else if (a.tls) {
      const { certificate, privateKey } = a.tls;
      const secret = new aws.secretsmanager.Secret(
        `${name}-tls`,
        { namePrefix: `ctera-lb-${name}-tls-`, description: `ctera-lb ${deployment}: TLS certificate and key`, recoveryWindowInDays: 7, tags },
        parent,
      );
      new aws.secretsmanager.SecretVersion(
        `${name}-tls-version`,
        {
          secretId: secret.id,
          secretString: pulumi.secret(
            pulumi.all([certificate, privateKey]).apply(([cert, key]) => {
              const problems = checkTlsPair(cert, key);
              if (problems.length) {
                throw new ConfigError(
                  problems.map((p) => ({ path: p.field === "cert" ? "tls.certificate" : "tls.privateKey", message: p.message })),
                  `CteraPortalLoadBalancer '${name}' args`,
                );
              }
              return JSON.stringify({ certificate: cert, privateKey: key });
            }),
          ),
        },
        { parent: secret },
      );
      tlsSecretArn = secret.arn;
    }

    // --- security groups ---------------------------------------------------------------------------
    const vpc = aws.ec2.getVpcOutput({ id: a.network.vpcId }, parent);
    const s3PrefixList = aws.ec2.getManagedPrefixListOutput({ name: pulumi.interpolate`com.amazonaws.${region}.s3` }, parent);
    const clientSg = new aws.ec2.SecurityGroup(
      `${name}-client`,
      {
        vpcId: a.network.vpcId,
        description: twoArm ? "ctera-lb: client-facing arm (eth1), VIP ports only" : "ctera-lb: VIP ports, real servers, admin (one-arm)",
        tags: { ...tags, Name: `${name}-client` },
      },
      parent,
    );
    const internalSg = twoArm
      ? new aws.ec2.SecurityGroup(
          `${name}-internal`,
          { vpcId: a.network.vpcId, description: "ctera-lb: internal arm (eth0), real servers and admin", tags: { ...tags, Name: `${name}-internal` } },
          parent,
        )
      : clientSg;
    const securityGroups = twoArm ? [clientSg, internalSg] : [clientSg];
    const ruleTags = tags;
    for (const port of this.traffic.listenerPorts) {
      for (const cidr of a.clientCidrs) {
        new aws.vpc.SecurityGroupIngressRule(
          `${name}-client-${port}-${cidr}`,
          { securityGroupId: clientSg.id, ipProtocol: "tcp", fromPort: port, toPort: port, ...cidrField(cidr), description: `clients to VIP port ${port}`, tags: ruleTags },
          { parent: clientSg },
        );
      }
    }
    for (const cidr of a.adminCidrs ?? []) {
      const port = this.traffic.adminPort;
      new aws.vpc.SecurityGroupIngressRule(
        `${name}-admin-${port}-${cidr}`,
        { securityGroupId: internalSg.id, ipProtocol: "tcp", fromPort: port, toPort: port, ...cidrField(cidr), description: "admin API", tags: ruleTags },
        { parent: internalSg },
      );
    }
    for (const f of this.traffic.serverFlows) {
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-server-${f.address}-${f.port}`,
        {
          securityGroupId: internalSg.id,
          ipProtocol: "tcp",
          fromPort: f.port,
          toPort: f.port,
          ...cidrField(hostCidr(f.address)),
          description: `real server ${f.address}:${f.port} (${f.purpose})`,
          tags: ruleTags,
        },
        { parent: internalSg },
      );
    }
    // What the VM needs to boot and run, over HTTPS only: S3 (image, config, the AL2023 package
    // repository) through the region's S3 prefix list; SSM, Secrets Manager and EC2 (VIP claim) through
    // VPC interface endpoints in the VPC's CIDR by default, or awsApiCidrs (e.g. 0.0.0.0/0 behind a NAT).
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-https-s3`,
      { securityGroupId: internalSg.id, ipProtocol: "tcp", fromPort: 443, toPort: 443, prefixListId: s3PrefixList.id, description: "S3 (image, config, OS packages)", tags: ruleTags },
      { parent: internalSg },
    );
    const apiCidrs: pulumi.Input<string>[] = a.awsApiCidrs ?? [vpc.cidrBlock];
    apiCidrs.forEach((cidr, i) => {
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-https-aws-api-${a.awsApiCidrs ? a.awsApiCidrs[i] : "vpc"}`,
        {
          securityGroupId: internalSg.id,
          ipProtocol: "tcp",
          fromPort: 443,
          toPort: 443,
          ...(typeof cidr === "string" ? cidrField(cidr) : { cidrIpv4: cidr }),
          description: "AWS APIs: SSM, Secrets Manager, EC2",
          tags: ruleTags,
        },
        { parent: internalSg },
      );
    });

    // --- VIP -----------------------------------------------------------------------------------------
    // The VIP must outlive any one VM (an image change replaces the VM, create-before-delete), so it is
    // not tied to the VM's own interfaces: a reservation ENI holds it as a secondary private IP until a VM
    // claims it at boot (EC2 AssignPrivateIpAddresses with reassignment), the same move a failover makes.
    let vipAddress: pulumi.Output<string>;
    let vipHolder: aws.ec2.NetworkInterface | undefined;
    if (a.vipAddress) {
      vipAddress = pulumi.output(a.vipAddress);
    } else {
      vipHolder = new aws.ec2.NetworkInterface(
        `${name}-vip`,
        {
          subnetId: clientSubnet,
          securityGroups: [clientSg.id],
          privateIpsCount: 1,
          description: `ctera-lb ${deployment}: holds the VIP until a load balancer VM claims it`,
          tags: { ...tags, Name: `${name}-vip` },
        },
        // After the first boot the VIP lives on the VM's ENI: the reservation's address list is not ours to reset.
        { parent: this, ignoreChanges: ["privateIps", "privateIpsCount", "privateIpList", "privateIpLists"] },
      );
      vipAddress = pulumi
        .all([vipHolder.privateIps, vipHolder.privateIp])
        .apply(([ips, primary]) => (ips ?? []).find((ip) => ip !== primary) ?? ips?.[0] ?? primary);
    }
    let publicVip: pulumi.Output<string | undefined> = pulumi.output(undefined);
    let eipAllocationId: pulumi.Output<string> | undefined;
    if (a.publicVip) {
      const eip = new aws.ec2.Eip(`${name}-vip-eip`, { domain: "vpc", tags: { ...tags, Name: `${name}-vip` } }, parent);
      // Associated with the VIP (a private address); when the VIP is reassigned, the association moves with it.
      new aws.ec2.EipAssociation(
        `${name}-vip-eip-assoc`,
        { allocationId: eip.allocationId, networkInterfaceId: vipHolder!.id, privateIpAddress: vipAddress, allowReassociation: true },
        { parent: eip, ignoreChanges: ["networkInterfaceId", "instanceId"] },
      );
      publicVip = eip.publicIp;
      eipAllocationId = eip.allocationId;
    }

    // --- config --------------------------------------------------------------------------------------
    const proxyConfig = vipAddress.apply((vip) => JSON.stringify(renderConfig(name, a, vip), null, 2) + "\n");
    const configObject = new aws.s3.BucketObjectv2(
      `${name}-config-object`,
      { bucket: bucket.id, key: CONFIG_OBJECT_KEY, content: proxyConfig, contentType: "application/json", tags },
      { parent: bucket, dependsOn: bucketReady },
    );

    // --- the VMs' network interfaces --------------------------------------------------------------------
    // One VM, or two with highAvailability. Both nodes take the SAME subnets (the one network arg): the VIP
    // is a secondary private IP, and AWS moves a secondary IP only between ENIs of one subnet.
    const ha = a.highAvailability ? (a.highAvailability === true ? {} : a.highAvailability) : undefined;
    const nodeCount = ha ? 2 : 1;
    // One VM: a new image hash replaces the VM together with its interfaces, create-before-delete: the new
    // VM's ENIs and instance exist before the old ones go, and the new VM claims the VIP at boot.
    // A pair: the interfaces stay (so the nodes keep their addresses, and VRRP, the security-group rules and
    // the peer objects do not change), and the nodes are replaced one after the other, each delete-before-
    // replace, with a handover step in between (see "rolling order" below).
    const generation = ha ? {} : { replacementTrigger: imageHash };
    const nodes = Array.from({ length: nodeCount }, (_, i) => {
      const vmName = `${name}-vm-${i}`;
      const eth0 = new aws.ec2.NetworkInterface(
        `${vmName}-eth0`,
        {
          subnetId: internalSubnet,
          securityGroups: [internalSg.id],
          description: `ctera-lb ${deployment}: ${twoArm ? "internal arm (toward the Portal servers)" : "one-arm: clients, Portal servers, admin"}`,
          tags: { ...tags, Name: `${vmName}-eth0` },
        },
        { parent: this, ...generation, ignoreChanges: ["privateIps", "privateIpsCount"] },
      );
      const eth1 = twoArm
        ? new aws.ec2.NetworkInterface(
            `${vmName}-eth1`,
            {
              subnetId: clientSubnet,
              securityGroups: [clientSg.id],
              description: `ctera-lb ${deployment}: client-facing arm (the VIP lives here)`,
              tags: { ...tags, Name: `${vmName}-eth1` },
            },
            { parent: this, ...generation, ignoreChanges: ["privateIps", "privateIpsCount"] },
          )
        : undefined;
      return { vmName, node: `vm-${i}`, eth0, eth1, clientEni: eth1 ?? eth0 };
    });

    // --- high availability: VRRP between the pair only, keepalived.conf per node ---------------------------
    const haObjects: aws.s3.BucketObjectv2[] = [];
    if (ha) {
      // Checked now with stand-in addresses, so a bad VRRP setting fails construction, not the deployment.
      renderHaPair(name, deployment, ha, {
        nodes: [
          { name: `${name}-vm-0`, address: "192.0.2.10" },
          { name: `${name}-vm-1`, address: "192.0.2.11" },
        ],
        enis: ["eni-00000000000000000", "eni-00000000000000001"],
        vip: PLACEHOLDER_VIP,
        vipInterface: twoArm ? "eth1" : "eth0",
        region: "eu-west-1",
        adminPort: this.traffic.adminPort,
      });
      for (const n of nodes) {
        const cidr = pulumi.interpolate`${n.eth0.privateIp}/32`;
        // IP protocol 112 (VRRP), only from and to the two nodes' internal addresses.
        new aws.vpc.SecurityGroupIngressRule(
          `${name}-vrrp-from-${n.node}`,
          { securityGroupId: internalSg.id, ipProtocol: "112", cidrIpv4: cidr, description: `VRRP from ${n.vmName}`, tags: ruleTags },
          { parent: internalSg },
        );
        new aws.vpc.SecurityGroupEgressRule(
          `${name}-vrrp-to-${n.node}`,
          { securityGroupId: internalSg.id, ipProtocol: "112", cidrIpv4: cidr, description: `VRRP to ${n.vmName}`, tags: ruleTags },
          { parent: internalSg },
        );
      }
      const rendered = pulumi
        .all([nodes[0].eth0.privateIp, nodes[1].eth0.privateIp, nodes[0].clientEni.id, nodes[1].clientEni.id, vipAddress, region, eipAllocationId ?? ""])
        .apply(([ip0, ip1, eni0, eni1, vip, reg, alloc]) =>
          renderHaPair(name, deployment, ha, {
            nodes: [
              { name: `${name}-vm-0`, address: ip0 },
              { name: `${name}-vm-1`, address: ip1 },
            ],
            enis: [eni0, eni1],
            vip,
            vipInterface: twoArm ? "eth1" : "eth0",
            region: reg,
            allocationId: alloc || undefined,
            adminPort: this.traffic.adminPort,
          }),
        );
      // Persistence sync (runtime config highAvailability.peer): each node pushes the entries that differ from
      // the rendezvous first choice to the other node's admin API, authenticated with the admin token. The peer's
      // address differs per node while the config object is shared, so each node gets a small object naming its
      // peer, which the config poller folds into the config (as it binds admin.address). Without an admin
      // token there is nothing to authenticate with: no sync (clients re-pinned after a Portal server failure
      // may then move once more on a failover).
      const peerSync = design.admin.token !== null;
      if (peerSync) {
        const port = this.traffic.adminPort;
        for (const n of nodes) {
          const cidr = pulumi.interpolate`${n.eth0.privateIp}/32`;
          new aws.vpc.SecurityGroupIngressRule(
            `${name}-peer-sync-from-${n.node}`,
            { securityGroupId: internalSg.id, ipProtocol: "tcp", fromPort: port, toPort: port, cidrIpv4: cidr, description: `persistence sync from ${n.vmName} (admin API)`, tags: ruleTags },
            { parent: internalSg },
          );
          new aws.vpc.SecurityGroupEgressRule(
            `${name}-peer-sync-to-${n.node}`,
            { securityGroupId: internalSg.id, ipProtocol: "tcp", fromPort: port, toPort: port, cidrIpv4: cidr, description: `persistence sync to ${n.vmName} (admin API)`, tags: ruleTags },
            { parent: internalSg },
          );
        }
      }
      nodes.forEach((n, i) => {
        if (peerSync) {
          haObjects.push(
            new aws.s3.BucketObjectv2(
              `${name}-ha-peer-${n.node}`,
              {
                bucket: bucket.id,
                key: haPeerObjectKey(n.node),
                content: nodes[1 - i].eth0.privateIp.apply((ip) => JSON.stringify({ peer: { address: ip, port: this.traffic.adminPort } }) + "\n"),
                contentType: "application/json",
                tags,
              },
              { parent: bucket, dependsOn: bucketReady },
            ),
          );
        }
        haObjects.push(
          new aws.s3.BucketObjectv2(
            `${name}-ha-${n.node}`,
            { bucket: bucket.id, key: `ha/${n.node}/keepalived.conf`, content: rendered.apply((r) => r[i]), contentType: "text/plain", tags },
            { parent: bucket, dependsOn: bucketReady },
          ),
        );
      });
    }

    // --- IAM -----------------------------------------------------------------------------------------
    const role = new aws.iam.Role(
      `${name}-role`,
      { description: `ctera-lb ${deployment}: load balancer VM`, assumeRolePolicy: JSON.stringify(assumeRolePolicy()), tags },
      parent,
    );
    const objectArn = (key: pulumi.Input<string>) => pulumi.interpolate`${bucket.arn}/${key}`;
    const eniArns = nodes.map((n) => pulumi.interpolate`arn:${partition}:ec2:${region}:${identity.accountId}:network-interface/${n.clientEni.id}`);
    const eipArn = eipAllocationId && ha ? pulumi.interpolate`arn:${partition}:ec2:${region}:${identity.accountId}:elastic-ip/${eipAllocationId}` : undefined;
    new aws.iam.RolePolicy(
      `${name}-role-policy`,
      {
        role: role.id,
        policy: pulumi
          .all([
            objectArn(imageObject.key),
            objectArn(configObject.key),
            pulumi.all(haObjects.map((o) => objectArn(o.key))),
            tlsSecretArn ?? "",
            pulumi.all(eniArns),
            eipArn ?? "",
            pulumi.interpolate`arn:${partition}:ec2:${region}:${identity.accountId}:instance/*`,
          ])
          .apply(([imageArn, configArn, haArns, secretArn, enis, eip, instanceArns]) =>
            JSON.stringify(
              instancePolicy({
                imageObjectArn: imageArn,
                configObjectArn: configArn,
                extraObjectArns: haArns,
                tlsSecretArn: secretArn || undefined,
                deploymentTag: { key: DEPLOYMENT_TAG, value: deployment },
                networkInterfaceArns: enis,
                elasticIpArn: eip || undefined,
                ...(ha ? { vrrpState: { instanceArnPattern: instanceArns, tagKeys: VRRP_TAGS } } : {}),
              }),
            ),
          ),
      },
      { parent: role },
    );
    new aws.iam.RolePolicyAttachment(
      `${name}-ssm-core`,
      { role: role.name, policyArn: pulumi.interpolate`arn:${partition}:iam::aws:${SSM_MANAGED_POLICY_ARN_SUFFIX}` },
      { parent: role },
    );
    const profile = new aws.iam.InstanceProfile(`${name}-profile`, { role: role.name, tags }, { parent: role });

    // --- the VMs -------------------------------------------------------------------------------------
    const instanceType = a.instanceType ?? "t3.small";
    const ami: pulumi.Input<string> = a.ami ?? defaultAmi(instanceType, parent);
    // --- rolling order (highAvailability) ------------------------------------------------------------
    // A change that replaces (or stops) the VMs must never take both nodes down. Pulumi's dependencies give
    // the order: handover-vm-1 → vm-1 → handover-vm-0 → vm-0. A handover step (scripts/ha/handover, run
    // where `pulumi up` runs, with the deployer's AWS credentials and the aws CLI) is re-run whenever its
    // node's instance inputs change; it reads the nodes' VRRP states (tags the notify script sets) and:
    //   handover-vm-1: if vm-1 is MASTER, waits for vm-0 to be a healthy standby and has vm-1 step down;
    //   handover-vm-0: waits until the NEW vm-1 is a healthy standby (BACKUP: keepalived running, its proxy
    //                  healthy), then has vm-0 step down (SSM → scripts/ha/step-down), waits for vm-1 MASTER.
    // A step that cannot succeed fails the update before the node it guards is touched.
    // What replaces or stops a VM: its user data (image hash included), a given AMI (a looked-up one is
    // ignored by the instance, so it must not trigger a needless failover either), the instance type.
    const nodeInputs = (i: number) =>
      pulumi.all([userDataOf(i), a.ami ?? "", instanceType]).apply(([ud, amiId, type]) =>
        crypto.createHash("sha256").update(`${ud}\0${amiId}\0${type}`).digest("hex"),
      );
    const handover = (from: number, to: number, after: pulumi.Resource[]) =>
      new command.local.Command(
        `${name}-handover-vm-${from}`,
        {
          create: pulumi.interpolate`scripts/ha/handover --deployment ${shellQuote(deployment)} --from vm-${from} --to vm-${to} --region ${region} --timeout 900`,
          dir: root,
          // Re-run (replace) when this node's instance is about to be replaced or changed.
          triggers: [nodeInputs(from)],
          logging: "stderr",
        },
        { parent: this, dependsOn: after },
      );
    const userDataOf = (i: number): pulumi.Output<string> => {
      const n = nodes[i];
      return pulumi
        .all([region, bucket.bucket, imageKey, imageHash, tlsSecretArn ?? "", vipAddress])
        .apply(([reg, bucketName, key, sha, secretArn, vip]) =>
          renderUserData({
            region: reg,
            bucket: bucketName,
            imageKey: key,
            imageSha256: sha,
            configKey: CONFIG_OBJECT_KEY,
            tlsSecretArn: secretArn || undefined,
            layout: a.network.layout,
            clientInterface: twoArm ? "eth1" : "eth0",
            internalInterface: "eth0",
            vip,
            deployment,
            ...(ha ? { haNode: n.node, haConfigKey: `ha/${n.node}/keepalived.conf` } : {}),
          }),
        );
    };
    const makeInstance = (n: (typeof nodes)[number], i: number): aws.ec2.Instance => {
      const userData = userDataOf(i);
      const instance = new aws.ec2.Instance(
        n.vmName,
        {
          ami,
          instanceType,
          primaryNetworkInterface: { networkInterfaceId: n.eth0.id },
          iamInstanceProfile: profile.name,
          userData,
          // A changed user data means a new image: replace instead of stop/start (one VM: create-before-delete;
          // a pair: delete-before-replace, one node at a time, see the rolling order above).
          userDataReplaceOnChange: true,
          metadataOptions: {
            httpEndpoint: "enabled",
            httpTokens: "required",
            // 1 hop: the boot script, the poller and the aws CLI run on the host, not in containers.
            httpPutResponseHopLimit: 1,
            instanceMetadataTags: "disabled",
          },
          rootBlockDevice: { encrypted: true, volumeType: "gp3", volumeSize: 8, deleteOnTermination: true, tags },
          monitoring: false,
          // ctera-lb:ha-node: how the handover finds the node; the VRRP state tags are the node's own (notify).
          tags: { ...tags, Name: n.vmName, ...(ha ? { [HA_NODE_TAG]: n.node } : {}) },
        },
        {
          parent: this,
          dependsOn: [configObject, ...haObjects, ...(ha ? [guards[i]] : [])],
          ignoreChanges: [...(a.ami ? [] : ["ami"]), ...(ha ? VRRP_TAGS.flatMap((k) => [`tags["${k}"]`, `tagsAll["${k}"]`]) : [])],
          // The pair keeps its interfaces: the old VM must be gone before a new one can take its primary ENI.
          ...(ha ? { deleteBeforeReplace: true } : {}),
        },
      );
      if (n.eth1) {
        new aws.ec2.NetworkInterfaceAttachment(
          `${n.vmName}-eth1-attach`,
          { instanceId: instance.id, networkInterfaceId: n.eth1.id, deviceIndex: 1 },
          { parent: n.eth1, ...generation },
        );
      }
      return instance;
    };
    const instances: aws.ec2.Instance[] = [];
    const vmOrder = ha ? [1, 0] : [0];
    const guards: Record<number, command.local.Command> = {};
    for (const i of vmOrder) {
      if (ha) guards[i] = handover(i, 1 - i, i === 0 ? [instances[1]] : []);
      instances[i] = makeInstance(nodes[i], i);
    }
    this.vipAddress = vipAddress;
    this.publicVip = publicVip;
    this.instanceIds = pulumi.all(instances.map((i) => i.id));
    this.securityGroupIds = pulumi.all(securityGroups.map((g) => g.id));
    this.imageHash = imageHash;
    this.proxyConfig = proxyConfig;
    // The admin API binds each VM's internal (eth0) address; with a pair, adminUrls has both.
    this.adminUrls = pulumi.all(nodes.map((n) => pulumi.interpolate`http://${n.eth0.privateIp}:${this.traffic.adminPort}/`));
    this.adminUrl = this.adminUrls.apply((u) => u[0]);
    this.bucketName = bucket.bucket;
    this.registerOutputs({
      vipAddress: this.vipAddress,
      publicVip: this.publicVip,
      instanceIds: this.instanceIds,
      securityGroupIds: this.securityGroupIds,
      imageHash: this.imageHash,
      proxyConfig: this.proxyConfig,
      adminUrl: this.adminUrl,
      adminUrls: this.adminUrls,
      bucketName: this.bucketName,
    });
  }
}

/** The typed settings → render(): the same function the CLI uses. TLS files are the VM's fixed paths. */
export function renderConfig(name: string, a: ParsedArgs, vip: string): RuntimeConfig {
  const inputs: RenderInputs = {
    design: a.design,
    realServers: a.realServers,
    vip,
    ...(a.tls ? { tls: { certFile: TLS_CERT_PATH, keyFile: TLS_KEY_PATH } } : {}),
  };
  for (const k of ["sourceAddress", "balance", "persistence", "healthCheck", "timeouts", "http", "virtualServices", "admin", "workers", "drainTimeoutMs"] as const) {
    if (a[k] !== undefined) (inputs as Record<string, unknown>)[k] = a[k];
  }
  try {
    return render(inputs, { checkFiles: false });
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.issues, `CteraPortalLoadBalancer '${name}' args`);
    throw e;
  }
}

/** Both nodes' keepalived.conf, from the shared typed renderer (src/config/keepalived.ts). */
export function renderHaPair(
  name: string,
  deployment: string,
  ha: { virtualRouterId?: number; advertIntSeconds?: number; preempt?: boolean },
  p: {
    nodes: [{ name: string; address: string }, { name: string; address: string }];
    enis: [string, string];
    vip: string;
    vipInterface: "eth0" | "eth1";
    region: string;
    allocationId?: string;
    adminPort: number;
  },
): [string, string] {
  // Not a secret: VRRP PASS travels in clear text in every advert; it only keeps a stray VRRP speaker out.
  // The boundary is the security group (protocol 112 between the pair only) and check_unicast_src.
  const digest = crypto.createHash("sha256").update(deployment).digest();
  try {
    const node = (i: 0 | 1) =>
      renderKeepalivedConfig({
        // 250/240: with nopreempt the priorities only decide an election between two BACKUPs (the first boot)
        // and never take the VIP from a running MASTER, so a small gap is enough (no track_script weight
        // could close it: the track script has none, a failure means FAULT). What the level does decide is
        // how soon a BACKUP declares a silent MASTER dead: 3 x advert_int + skew, skew = (256 - priority)/256 x
        // advert_int, i.e. +0.06 s at 240 instead of +0.61 s at 100 (at 1 s adverts). 255 is reserved for an
        // address owner, which neither node is.
        self: { ...p.nodes[i], priority: HA_PRIORITIES[i] },
        peer: { ...p.nodes[1 - i], priority: HA_PRIORITIES[1 - i] },
        vrrpInterface: "eth0",
        virtualRouterId: ha.virtualRouterId ?? (digest[0] % 255) + 1,
        authPass: digest.toString("hex").slice(0, 8),
        ...(ha.advertIntSeconds !== undefined ? { advertIntSeconds: ha.advertIntSeconds } : {}),
        ...(ha.preempt !== undefined ? { preempt: ha.preempt } : {}),
        vip: { address: p.vip, interface: p.vipInterface },
        // The config poller binds the admin API to the node's internal address; the track script asks there.
        admin: { address: p.nodes[i].address, port: p.adminPort },
        ec2: { networkInterfaceId: p.enis[i], ...(p.allocationId ? { allocationId: p.allocationId } : {}), region: p.region },
      });
    return [node(0), node(1)];
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.issues.map((i) => ({ ...i, path: `highAvailability.${i.path}` })), `CteraPortalLoadBalancer '${name}' args`);
    throw e;
  }
}

/** keepalived priorities of vm-0 and vm-1 (see renderHaPair). */
export const HA_PRIORITIES = [250, 240] as const;

/** One shell word, whatever the string holds. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** PEM given as plain strings is checked now (a wrong key is a construction error, not a boot failure). */
function checkPlainTls(name: string, a: ParsedArgs): void {
  if (!a.tls || !("certificate" in a.tls)) return;
  const { certificate, privateKey } = a.tls;
  if (typeof certificate !== "string" || typeof privateKey !== "string") return;
  const problems = checkTlsPair(certificate, privateKey);
  if (problems.length) {
    throw new ConfigError(
      problems.map((p) => ({ path: p.field === "cert" ? "tls.certificate" : "tls.privateKey", message: p.message })),
      `CteraPortalLoadBalancer '${name}' args`,
    );
  }
}

/** Tags merged once, here; every taggable child gets exactly this map (plus its Name). */
function sharedTags(a: ParsedArgs, deployment: string): Record<string, string> {
  return { ...a.tags, [DEPLOYMENT_TAG]: deployment, "ctera-lb:design": a.design, "ctera-lb:layout": a.network.layout };
}

function cidrField(cidr: string): { cidrIpv4: string } | { cidrIpv6: string } {
  return cidr.includes(":") ? { cidrIpv6: cidr } : { cidrIpv4: cidr };
}

/**
 * Default AMI: the newest Amazon Linux 2023 for the instance type's architecture (Graviton types, whose
 * family ends in "g" like t4g or m7g, get arm64). AL2023 carries the aws CLI, the SSM agent and Node 20
 * in its repository. The instance ignores later changes of this lookup: a newer AMI must not replace VMs.
 */
export function defaultAmi(instanceType: pulumi.Input<string>, opts: pulumi.InvokeOutputOptions): pulumi.Output<string> {
  return pulumi.output(instanceType).apply((t) => {
    const arch = isGraviton(t) ? "arm64" : "x86_64";
    return aws.ec2.getAmiOutput(
      {
        mostRecent: true,
        owners: ["amazon"],
        filters: [
          { name: "name", values: [`al2023-ami-2023.*-kernel-*-${arch}`] },
          { name: "architecture", values: [arch] },
          { name: "virtualization-type", values: ["hvm"] },
        ],
      },
      opts,
    ).id;
  });
}


function parseBuildOutput(stdout: string): { sha256: string; file: string } {
  const line = stdout.trim().split("\n").pop() ?? "";
  let v: { sha256?: string; file?: string };
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`scripts/build-image printed no result: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  if (!v.sha256 || !/^[0-9a-f]{64}$/.test(v.sha256) || !v.file) throw new Error(`scripts/build-image printed an unexpected result: ${line}`);
  return { sha256: v.sha256, file: v.file };
}

/** The package's root (where scripts/build-image is), from src/component or dist/src/component. */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, "scripts", "build-image")) && fs.existsSync(path.join(dir, "package.json"))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error("cannot find the ctera-portal-lb package root (scripts/build-image)");
}

/** Digest of everything scripts/build-image reads; a change re-runs the build (same bytes → same hash). */
export function imageSourceDigest(root: string): string {
  const h = crypto.createHash("sha256");
  const files: string[] = [];
  const walk = (d: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== "component" && e.name !== "node_modules") walk(p);
      } else if (/\.(ts|js|json)$/.test(e.name) || d.includes(`${path.sep}scripts`)) files.push(p);
    }
  };
  walk(fs.existsSync(path.join(root, "src")) ? path.join(root, "src") : path.join(root, "dist", "src"));
  walk(path.join(root, "scripts", "image"));
  files.push(path.join(root, "scripts", "build-image"), path.join(root, "scripts", "lb-network-setup"));
  for (const f of files.sort()) {
    h.update(path.relative(root, f)).update("\0");
    if (fs.existsSync(f)) h.update(fs.readFileSync(f));
  }
  return h.digest("hex");
}
