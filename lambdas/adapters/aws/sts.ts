import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { AckdError } from '../../core/errors.ts';
import type { AssumeRoleParams, AwsSessionCredentials, RoleAssumer } from '../../core/aws-broker.ts';
import { clientOptions, type AwsClientConfig } from './client.ts';

/** STS AssumeRole with session tags. AWS refusals become fixed sentences; the details go to the log through `cause`. */
export class StsRoleAssumer implements RoleAssumer {
  private readonly sts: STSClient;

  constructor(config: AwsClientConfig) {
    this.sts = new STSClient(clientOptions(config));
  }

  async assumeRole(p: AssumeRoleParams): Promise<AwsSessionCredentials> {
    let out;
    try {
      out = await this.sts.send(
        new AssumeRoleCommand({
          RoleArn: p.roleArn,
          RoleSessionName: p.roleSessionName,
          DurationSeconds: p.durationSeconds,
          Tags: p.tags.map((t) => ({ Key: t.Key, Value: t.Value })),
          TransitiveTagKeys: [...p.transitiveTagKeys],
          ...(p.policy ? { Policy: p.policy } : {}),
        }),
      );
    } catch (e) {
      const name = (e as { name?: string }).name ?? '';
      if (name === 'AccessDenied' || name === 'AccessDeniedException') {
        throw new AckdError('ERR_INTERNAL', 'AWS refused ackd the role: its trust policy must trust the broker with sts:AssumeRole and sts:TagSession (see docs/aws.md)', { cause: e });
      }
      if (name === 'ValidationError' && /DurationSeconds|MaxSessionDuration/i.test((e as Error).message)) {
        throw new AckdError('ERR_INTERNAL', "AWS refused the session length: the role's MaxSessionDuration is shorter than maxSessionSeconds of ackd's role map", { cause: e });
      }
      throw new AckdError('ERR_ISSUER_UNAVAILABLE', 'AWS STS could not be reached or refused the call; try again later', { cause: e });
    }
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !c.Expiration) throw new AckdError('ERR_INTERNAL', 'AWS STS answered without credentials');
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
      expiration: c.Expiration,
      assumedRoleId: out.AssumedRoleUser?.AssumedRoleId ?? '',
      assumedRoleArn: out.AssumedRoleUser?.Arn ?? '',
    };
  }
}
