import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53targets from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import type { CustomDomainConfig } from '../config.ts';

export interface McpDomainProps {
  readonly config: CustomDomainConfig;
  readonly httpApi: apigw.IHttpApi;
  readonly stage: apigw.IStage;
}

/**
 * A stable name for the MCP endpoint (issue 15): agent configurations name
 * `https://<customDomain.name>/mcp`, which survives a replaced HTTP API (a new api id) because
 * only the API mapping moves. A regional API Gateway custom domain with the TLS 1.2 security
 * policy (TLS 1.0 and 1.1 refused), mapped to the HTTP API's $default stage at the root, so
 * /mcp, /healthz and the trust bundle keep their paths. The certificate is the configured one, or
 * a new one validated by DNS in the configured Route 53 zone; with a zone, an alias A record
 * points the name at the domain.
 */
export class McpDomain extends Construct {
  readonly domainName: apigw.DomainName;
  /** https://<name> */
  readonly url: string;

  constructor(scope: Construct, id: string, props: McpDomainProps) {
    super(scope, id);
    const { name, certificateArn, hostedZoneId } = props.config;
    const zone = hostedZoneId ? route53.HostedZone.fromHostedZoneId(this, 'Zone', hostedZoneId) : undefined;
    const certificate = certificateArn
      ? acm.Certificate.fromCertificateArn(this, 'Certificate', certificateArn)
      : new acm.Certificate(this, 'Certificate', { domainName: name, validation: acm.CertificateValidation.fromDns(zone) });

    this.domainName = new apigw.DomainName(this, 'DomainName', {
      domainName: name,
      certificate,
      endpointType: apigw.EndpointType.REGIONAL,
      securityPolicy: apigw.SecurityPolicy.TLS_1_2,
    });
    new apigw.ApiMapping(this, 'Mapping', { api: props.httpApi, domainName: this.domainName, stage: props.stage });
    if (zone) {
      new route53.ARecord(this, 'Alias', {
        zone,
        // Fully qualified (trailing dot): the zone may be the name itself or any parent of it.
        recordName: `${name}.`,
        target: route53.RecordTarget.fromAlias(
          new route53targets.ApiGatewayv2DomainProperties(this.domainName.regionalDomainName, this.domainName.regionalHostedZoneId),
        ),
      });
    }
    this.url = `https://${name}`;
  }
}
