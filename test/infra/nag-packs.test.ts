/**
 * Issue 15 item 7: every synth runs cdk-nag's AWS Solutions, HIPAA Security and NIST 800-53 rev 5
 * packs (bin/cdk.ts), and each finding is fixed or acknowledged by rule id on its resource with
 * a reason (lib/nag-compliance.ts). The offline `npx cdk synth` of test/infra/cdk-synth.test.ts
 * runs the same packs.
 */
import * as logs from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { NAG_PACKS } from '../../lib/nag.ts';
import { resourcesOf, synthStack } from '../helpers/synth-stack.ts';

const PACK_RULE = /^(?:Annotation::)?(AwsSolutions|HIPAA\.Security|NIST\.800\.53\.R5)-[A-Za-z0-9]+(\[[^\]]+\])?$/;

describe('cdk-nag packs on every synth', () => {
  it('are AWS Solutions, HIPAA Security and NIST 800-53 rev 5', () => {
    expect([...NAG_PACKS]).toEqual(['AwsSolutions', 'HIPAA.Security', 'NIST.800.53.R5']);
  });

  it('the app passes all three (ci stage; prod with a custom domain; NAT instances and HA SPIRE, with existing evidence keys)', () => {
    expect(() => synthStack().app.synth()).not.toThrow();
    expect(() => synthStack({ stage: 'prod', customDomain: { name: 'mcp.acme-corp.io', hostedZoneId: 'Z0123456789ABCDEFGHIJ' } }).app.synth()).not.toThrow();
    // The other shapes: NAT instances and HA SPIRE, together, in a stage and in prod; existing evidence keys.
    expect(() => synthStack({ natProvider: 'instance', spireServers: 2 }).app.synth()).not.toThrow();
    expect(() =>
      synthStack({
        stage: 'prod',
        natProvider: 'instance',
        spireServers: 2,
        decisionKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        receiptKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/mrk-0123456789abcdef0123456789abcdef',
      }).app.synth(),
    ).not.toThrow();
  }, 240_000);

  it('a new unreviewed resource fails the synth in each compliance pack (the packs really run)', () => {
    let message = '';
    try {
      synthStack({}, (stack) => new logs.LogGroup(stack, 'Unreviewed', { retention: logs.RetentionDays.ONE_DAY })).app.synth();
    } catch (e) {
      message = String((e as Error).message);
    }
    expect(message).toContain('HIPAA.Security-CloudWatchLogGroupEncrypted');
    expect(message).toContain('NIST.800.53.R5-CloudWatchLogGroupEncrypted');
    expect(message).toContain('Ackd-ci/Unreviewed');
  }, 120_000);

  it('every pack acknowledgment names one rule (never a pack or a wildcard) and carries a reason', () => {
    const { app } = synthStack();
    const byPack: Record<string, number> = {};
    for (const c of app.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type !== 'aws:cdk:acknowledged-rules') continue;
        for (const [id, reason] of Object.entries(m.data as Record<string, unknown>)) {
          const pack = PACK_RULE.exec(id)?.[1];
          if (!pack && !/AwsSolutions|HIPAA|NIST/.test(id)) continue; // CDK's own acknowledgments
          expect(pack, id).toBeDefined();
          expect(typeof reason === 'string' ? reason.trim().length : 0, id).toBeGreaterThan(60);
          byPack[pack!] = (byPack[pack!] ?? 0) + 1;
        }
      }
    }
    expect(byPack['HIPAA.Security']).toBeGreaterThan(10);
    expect(byPack['NIST.800.53.R5']).toBeGreaterThan(10);
  }, 120_000);

  it('fixed rather than acknowledged: public subnets assign no public IPs', () => {
    const { t } = synthStack();
    const subnets = resourcesOf(t, 'AWS::EC2::Subnet');
    expect(subnets.length).toBe(4);
    for (const [id, s] of subnets) expect(s.Properties.MapPublicIpOnLaunch ?? false, id).toBe(false);
  }, 120_000);
});
