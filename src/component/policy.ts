/**
 * The instance role's policy documents, as plain functions of resolved ARNs so tests can parse and check
 * them. Least privilege: read this deployment's image object and config object (GetObject also answers
 * HeadObject, which the config poller uses for the ETag), read its TLS secret, and claim the VIP on the
 * deployment's own ENIs (tag-scoped). Session Manager comes from the AWS managed policy
 * AmazonSSMManagedInstanceCore, attached separately.
 */
export interface PolicyStatement {
  Sid: string;
  Effect: "Allow";
  Action: string[];
  Resource: string[] | string;
  Condition?: Record<string, Record<string, string>>;
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
  /** ARN prefix for ENIs of the region/account, e.g. arn:aws:ec2:eu-west-1:123456789012:network-interface/*. */
  networkInterfaceArnPattern: string;
}

export function instancePolicy(p: InstancePolicyInputs): PolicyDocument {
  const statements: PolicyStatement[] = [
    { Sid: "ReadImageAndConfig", Effect: "Allow", Action: ["s3:GetObject"], Resource: [p.imageObjectArn, p.configObjectArn] },
  ];
  if (p.tlsSecretArn) {
    statements.push({ Sid: "ReadTlsSecret", Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [p.tlsSecretArn] });
  }
  statements.push({
    Sid: "ClaimVipOnOwnEnis",
    Effect: "Allow",
    Action: ["ec2:AssignPrivateIpAddresses"],
    Resource: [p.networkInterfaceArnPattern],
    Condition: { StringEquals: { [`aws:ResourceTag/${p.deploymentTag.key}`]: p.deploymentTag.value } },
  });
  return { Version: "2012-10-17", Statement: statements };
}
