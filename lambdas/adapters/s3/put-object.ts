import { createHash } from 'node:crypto';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Hash } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { AckdError } from '../../core/errors.ts';

/** What the daily archive needs of S3: write an object once. */
export interface ObjectSink {
  /** Writes `body` at `key` unless an object is there already: `created`, or `exists` (nothing written). */
  putOnce(key: string, body: Uint8Array, contentType: string): Promise<'created' | 'exists'>;
}

/**
 * S3 PutObject, signed with the AWS SDK's own SigV4 signer and the SDK's default credential
 * chain (on Lambda: the function role). A thin adapter because this repository does not carry
 * @aws-sdk/client-s3 for one call; swapping it in changes this file only.
 *
 * - `If-None-Match: *`: an archive is written once; a retry of a day already archived answers
 *   `exists` (S3's 412) instead of adding a version.
 * - `Content-MD5` and `x-amz-checksum-sha256`: S3 requires an integrity header for every write
 *   to a bucket with Object Lock, and checks both against the body.
 */
export class S3ObjectSink implements ObjectSink {
  private readonly signer: SignatureV4;
  private readonly host: string;

  constructor(
    private readonly bucket: string,
    private readonly region: string,
    credentials: AwsCredentialIdentityProvider = defaultProvider(),
  ) {
    this.signer = new SignatureV4({ credentials, region, service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: true });
    this.host = `${bucket}.s3.${region}.amazonaws.com`;
  }

  async putOnce(key: string, body: Uint8Array, contentType: string): Promise<'created' | 'exists'> {
    const path = '/' + key.split('/').map(encodeURIComponent).join('/');
    const signed = await this.signer.sign({
      method: 'PUT',
      protocol: 'https:',
      hostname: this.host,
      path,
      query: {},
      headers: {
        host: this.host,
        'content-type': contentType,
        'content-md5': createHash('md5').update(body).digest('base64'),
        'x-amz-checksum-sha256': createHash('sha256').update(body).digest('base64'),
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
        'if-none-match': '*',
      },
      body,
    });
    let res: Response;
    try {
      // fetch sets Host (the same value that was signed) itself.
      const { host: _host, ...headers } = signed.headers;
      res = await fetch(`https://${this.host}${path}`, { method: 'PUT', headers, body: new Blob([body as Uint8Array<ArrayBuffer>]) });
    } catch (e) {
      throw new AckdError('ERR_INTERNAL', `S3: cannot reach ${this.host}`, { cause: e });
    }
    const text = await res.text();
    if (res.ok) return 'created';
    // 412: an object is at the key already. 409 ConditionalRequestConflict: a concurrent write of
    // the same key won; either way that day is archived once.
    if (res.status === 412 || (res.status === 409 && text.includes('ConditionalRequestConflict'))) return 'exists';
    const code = /<Code>([^<]{1,64})<\/Code>/.exec(text)?.[1] ?? 'unknown';
    throw new AckdError('ERR_INTERNAL', `S3 PutObject s3://${this.bucket}/${key} failed: HTTP ${res.status} ${code}`);
  }
}
