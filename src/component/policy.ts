/**
 * The instance role's policy documents, as plain functions of resolved ARNs so tests can parse and check
 * them. Least privilege: read this deployment's image object and config object (GetObject also answers
 * HeadObject, which the config poller uses for the ETag), read its TLS secret, and claim the VIP on the
 * deployment's own ENIs (tag-scoped), and in a pair publish the node's VRRP state as tags on the deployment's
 * own instances (tag-scoped, state tags only). Session Manager comes from the AWS managed policy
 * AmazonSSMManagedInstanceCore, attached separately.
 */
export interface PolicyStatement {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string[] | string;
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement[];
}

export const SSM_MANAGED_POLICY_ARN_SUFFIX = "policy/AmazonSSMManagedInstanceCore";

/** EC2 may assume the role, nothing else. */
export function assumeRolePolicy() {
  return {
    Version: "2012-10-17",
    Statement: [{ Sid: "Ec2AssumesRole", Effect: "Allow", Action: "sts:AssumeRole", Principal: { Service: "ec2.amazonaws.com" } }],
  };
}

export interface InstancePolicyInputs {
  imageObjectArn: string;
  configObjectArn: string;
  /** Absent for ssl-on-portal (no certificate on the load balancer). */
  tlsSecretArn?: string;
  /** The deployment tag (key=value) every ENI of this deployment carries; scopes the VIP claim. */
  deploymentTag: { key: string; value: string };
  /** The client-facing ENIs of this deployment's VM(s): the only ENIs the VIP may be moved onto. */
  networkInterfaceArns: string[];
  /** additional objects the VMs read (HA: each node's keepalived.conf). */
  extraObjectArns?: string[];
  /** publicVip with highAvailability: the Elastic IP the new MASTER re-associates. */
  elasticIpArn?: string;
  /** highAvailability: the nodes tag their own instances with their VRRP state (these keys only); the ARN
   * pattern of the account's instances in the region (the instances' ids are not known before the role). */
  vrrpState?: { instanceArnPattern: string; tagKeys: readonly string[] };
}

export function instancePolicy(p: InstancePolicyInputs): PolicyDocument {
  const statements: PolicyStatement[] = [
    { Sid: "ReadImageAndConfig", Effect: "Allow", Action: ["s3:GetObject"], Resource: [p.imageObjectArn, p.configObjectArn, ...(p.extraObjectArns ?? [])] },
  ];
  if (p.tlsSecretArn) {
    statements.push({ Sid: "ReadTlsSecret", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [p.tlsSecretArn] });
  }
  // Exact ENI ARNs and, in case an ARN list is ever widened, the deployment tag as well.
  const ownTag = { StringEquals: { [`aws:ResourceTag/${p.deploymentTag.key}`]: p.deploymentTag.value } };
  statements.push({
    Sid: "ClaimVipOnOwnEnis",
    Effect: "Allow",
    Action: ["ec2:AssignPrivateIpAddresses"],
    Resource: p.networkInterfaceArns,
    Condition: ownTag,
  });
  if (p.elasticIpArn) {
    statements.push({
      Sid: "MoveElasticIpWithVip",
      Effect: "Allow",
      Action: ["ec2:AssociateAddress"],
      Resource: [p.elasticIpArn, ...p.networkInterfaceArns],
      Condition: ownTag,
    });
  }
  if (p.vrrpState) {
    // Scoped to the pair by the deployment tag both instances carry, and to the state tags only (a node
    // cannot retag itself out of the deployment or touch any other tag).
    statements.push({
      Sid: "PublishVrrpStateOnOwnInstances",
      Effect: "Allow",
      Action: ["ec2:CreateTags"],
      Resource: [p.vrrpState.instanceArnPattern],
      Condition: { ...ownTag, "ForAllValues:StringEquals": { "aws:TagKeys": [...p.vrrpState.tagKeys] } },
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}
