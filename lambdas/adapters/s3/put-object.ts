import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { AckdError } from '../../core/errors.ts';

/** What the daily archive needs of S3: write an object once. */
export interface ObjectSink {
  /** Writes `body` at `key` unless an object is there already: `created`, or `exists` (nothing written). */
  putOnce(key: string, body: Uint8Array, contentType: string): Promise<'created' | 'exists'>;
}

/**
 * S3 PutObject through @aws-sdk/client-s3 (SDK's default credential chain unless given; on Lambda:
 * the function role).
 *
 * - `If-None-Match: *` (`IfNoneMatch`): an archive is written once; a retry of a day already
 *   archived answers `exists` (S3's 412 PreconditionFailed, or 409 ConditionalRequestConflict when
 *   a concurrent write of the same key won) instead of adding a version.
 * - `ChecksumAlgorithm: SHA256`: S3 requires an integrity checksum for every write to a bucket
 *   with Object Lock; the SDK computes it over the body and S3 checks it.
 */
export class S3ObjectSink implements ObjectSink {
  private readonly client: S3Client;

  constructor(
    private readonly bucket: string,
    region: string,
    credentials?: AwsCredentialIdentityProvider,
  ) {
    this.client = new S3Client({ region, ...(credentials ? { credentials } : {}) });
  }

  async putOnce(key: string, body: Uint8Array, contentType: string): Promise<'created' | 'exists'> {
    try {
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          IfNoneMatch: '*',
          ChecksumAlgorithm: 'SHA256',
        }),
      );
      return 'created';
    } catch (e) {
      // An S3 answer (S3ServiceException and its subclasses) carries the HTTP status; anything else never reached S3.
      const status = (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
      if (status !== undefined && e instanceof Error) {
        if (status === 412 || (status === 409 && e.name === 'ConditionalRequestConflict')) return 'exists';
        throw new AckdError('ERR_INTERNAL', `S3 PutObject s3://${this.bucket}/${key} failed: HTTP ${status} ${e.name}`, { cause: e });
      }
      throw new AckdError('ERR_INTERNAL', `S3: PutObject s3://${this.bucket}/${key} failed to reach S3`, { cause: e });
    }
  }
}
