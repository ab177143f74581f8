/**
 * The environment's network: one VPC with no internet path at all. Functions run in the `functions`
 * subnets and reach AWS only through VPC endpoints; the database and its proxy sit in the `database`
 * subnets. Neither group has a route to an internet or NAT gateway, so nothing in the VPC can call out,
 * and nothing outside can call in except through API Gateway → Lambda.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface NetworkProps {
  /** The VPC's IPv4 range, distinct per environment. */
  readonly cidr: string;
  /** Availability zones to span. @default 2 */
  readonly maxAzs?: number;
  /** Retention of the VPC flow logs. */
  readonly flowLogRetention: logs.RetentionDays;
  /** Removal policy of the flow log group. @default RemovalPolicy.DESTROY */
  readonly removalPolicy?: RemovalPolicy;
}

/** Interface endpoints the functions (and the secret rotation) need; each saves an internet path. */
export const INTERFACE_ENDPOINTS = {
  Sts: ec2.InterfaceVpcEndpointAwsService.STS,
  Kms: ec2.InterfaceVpcEndpointAwsService.KMS,
  SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
  Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
  XRay: ec2.InterfaceVpcEndpointAwsService.XRAY,
} as const;

export class Network extends Construct {
  public readonly vpc: ec2.Vpc;
  /** Where functions run: no internet route; S3 through the gateway endpoint, the rest through interfaces. */
  public readonly functionSubnets: ec2.SubnetSelection = { subnetGroupName: 'functions' };
  /** Where the database and the proxy run. */
  public readonly databaseSubnets: ec2.SubnetSelection = { subnetGroupName: 'database' };
  public readonly interfaceEndpoints: Readonly<Record<keyof typeof INTERFACE_ENDPOINTS, ec2.InterfaceVpcEndpoint>>;
  public readonly s3Endpoint: ec2.GatewayVpcEndpoint;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr),
      maxAzs: props.maxAzs ?? 2,
      natGateways: 0,
      // Both groups are isolated (no internet or NAT route); the names say what runs where.
      subnetConfiguration: [
        { name: 'functions', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
        { name: 'database', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      // CDK restricts the default security group with a custom-resource Lambda; nothing here uses that
      // group, so the extra function is not worth it.
      restrictDefaultSecurityGroup: false,
      flowLogs: {
        all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL },
      },
    });
    this.s3Endpoint = this.vpc.addGatewayEndpoint('S3', {
      service: ec2.GatewayVpcEndpointAwsService.S3,
      subnets: [this.functionSubnets],
    });
    const endpoints: Partial<Record<keyof typeof INTERFACE_ENDPOINTS, ec2.InterfaceVpcEndpoint>> = {};
    for (const [name, service] of Object.entries(INTERFACE_ENDPOINTS) as [keyof typeof INTERFACE_ENDPOINTS, ec2.InterfaceVpcEndpointAwsService][]) {
      endpoints[name] = this.vpc.addInterfaceEndpoint(name, {
        service,
        subnets: this.functionSubnets,
        privateDnsEnabled: true,
        open: false,
      });
      // HTTPS from the VPC's own range only (route, migration and rotation functions).
      endpoints[name].connections.allowFrom(ec2.Peer.ipv4(props.cidr), ec2.Port.tcp(443), 'HTTPS from this VPC');
    }
    this.interfaceEndpoints = endpoints as Record<keyof typeof INTERFACE_ENDPOINTS, ec2.InterfaceVpcEndpoint>;
  }
}
