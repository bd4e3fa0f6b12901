/** Issue 15 item 6: an optional custom domain for the MCP endpoint (TLS 1.2+, API mapping, Route 53 alias). */
import { describe, expect, it } from 'vitest';
import { resourcesOf, synthStack } from '../helpers/synth-stack.ts';

const CERT = 'arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1b2a-4c3d-9e8f-000000000001';

describe('MCP custom domain', () => {
  it('none by default: the execute-api URL only', () => {
    const { t } = synthStack();
    expect(resourcesOf(t, 'AWS::ApiGatewayV2::DomainName')).toEqual([]);
    expect(t.Outputs.McpCustomUrl).toBeUndefined();
  }, 120_000);

  it('with a certificate: regional domain, TLS 1.2, mapped to the HTTP API\'s $default stage; the URL is an output', () => {
    const { t, stack } = synthStack({ customDomain: JSON.stringify({ name: 'MCP.acme-corp.io', certificateArn: CERT }) });
    const [domainId, domain] = resourcesOf(t, 'AWS::ApiGatewayV2::DomainName')[0]!;
    expect(domain.Properties.DomainName).toBe('mcp.acme-corp.io');
    expect(domain.Properties.DomainNameConfigurations).toEqual([{ CertificateArn: CERT, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' }]);
    const [, mapping] = resourcesOf(t, 'AWS::ApiGatewayV2::ApiMapping')[0]!;
    expect(mapping!.Properties.ApiId).toEqual({ Ref: stack.resolve(stack.getLogicalId(stack.api.httpApi.node.defaultChild as never)) });
    expect(mapping!.Properties.DomainName).toEqual({ Ref: domainId });
    const [mappingId] = resourcesOf(t, 'AWS::ApiGatewayV2::ApiMapping')[0]!;
    expect(mapping!.Properties.Stage).toBe('$default');
    // Created only once the stage exists.
    expect(t.Resources[mappingId!].DependsOn).toContain(stack.resolve(stack.getLogicalId(stack.api.httpStage.node.defaultChild as never)));
    expect(mapping!.Properties.ApiMappingKey).toBeUndefined(); // at the root: /mcp stays /mcp
    expect(t.Outputs.McpCustomUrl.Value).toBe('https://mcp.acme-corp.io/mcp');
    expect(resourcesOf(t, 'AWS::CertificateManager::Certificate')).toEqual([]);
    expect(resourcesOf(t, 'AWS::Route53::RecordSet')).toEqual([]);
  }, 120_000);

  it('with a hosted zone: a DNS-validated certificate and an alias A record to the domain', () => {
    const { t } = synthStack({ customDomain: { name: 'mcp.acme-corp.io', hostedZoneId: 'Z0123456789ABCDEFGHIJ' } });
    const [certId, cert] = resourcesOf(t, 'AWS::CertificateManager::Certificate')[0]!;
    expect(cert!.Properties).toMatchObject({ DomainName: 'mcp.acme-corp.io', ValidationMethod: 'DNS', DomainValidationOptions: [{ DomainName: 'mcp.acme-corp.io', HostedZoneId: 'Z0123456789ABCDEFGHIJ' }] });
    const [, domain] = resourcesOf(t, 'AWS::ApiGatewayV2::DomainName')[0]!;
    expect(domain!.Properties.DomainNameConfigurations[0]).toMatchObject({ CertificateArn: { Ref: certId }, SecurityPolicy: 'TLS_1_2' });
    const [, record] = resourcesOf(t, 'AWS::Route53::RecordSet')[0]!;
    expect(record!.Properties).toMatchObject({ Name: 'mcp.acme-corp.io.', Type: 'A', HostedZoneId: 'Z0123456789ABCDEFGHIJ' });
    expect(JSON.stringify(record!.Properties.AliasTarget)).toContain('RegionalDomainName');
  }, 120_000);

  it.each([
    [{ name: 'mcp.acme-corp.io' }, /needs "certificateArn".*or "hostedZoneId"/],
    [{ name: 'not a host', certificateArn: CERT }, /key "name" must be a host name/],
    [{ name: 'mcp.acme-corp.io', certificateArn: 'arn:aws:iam::123456789012:role/x' }, /key "certificateArn" must be an ACM certificate ARN/],
    [{ name: 'mcp.acme-corp.io', hostedZoneId: 'zone' }, /key "hostedZoneId" must be a Route 53 hosted zone id/],
    [{ name: 'mcp.acme-corp.io', certificateArn: CERT, path: '/x' }, /unknown key "path"/],
    ['mcp.acme-corp.io', /must be a JSON object/],
  ])('refuses %j naming the setting', (value, rule) => {
    expect(() => synthStack({ customDomain: value })).toThrow(/customDomain \(context "ackd:customDomain" or env ACKD_DEPLOY_CUSTOM_DOMAIN\)/);
    expect(() => synthStack({ customDomain: value })).toThrow(rule);
  });
});
