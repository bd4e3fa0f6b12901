/** Where the AWS clients of the broker go: the region, and locally the emulator's endpoint (with its credentials). */
export interface AwsClientConfig {
  readonly region: string;
  /** Local only: an AWS API emulator (moto). */
  readonly endpoint?: string;
  /** Local only: the emulator's credentials for the broker; on AWS the function's role. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** The options of an AWS SDK v3 client (STS, IAM) for `c`. */
export function clientOptions(c: AwsClientConfig): { region: string; endpoint?: string; credentials?: { accessKeyId: string; secretAccessKey: string }; maxAttempts: number } {
  return { region: c.region, maxAttempts: 3, ...(c.endpoint ? { endpoint: c.endpoint } : {}), ...(c.credentials ? { credentials: { ...c.credentials } } : {}) };
}
