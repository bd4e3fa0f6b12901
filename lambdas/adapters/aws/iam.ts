import { DeleteRolePolicyCommand, IAMClient, ListRolePoliciesCommand, NoSuchEntityException, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import type { RoleDenies } from '../../core/aws-broker.ts';
import { clientOptions, type AwsClientConfig } from './client.ts';

/** The role's name from its ARN (IAM's role APIs take the name; a path is not part of it). */
export function roleNameOf(roleArn: string): string {
  return roleArn.slice(roleArn.lastIndexOf('/') + 1);
}

/** Inline deny policies on IAM roles (revocation that bites). */
export class IamRoleDenies implements RoleDenies {
  private readonly iam: IAMClient;

  constructor(config: AwsClientConfig) {
    this.iam = new IAMClient(clientOptions(config));
  }

  async put(roleArn: string, policy: { readonly name: string; readonly document: string }): Promise<void> {
    await this.iam.send(new PutRolePolicyCommand({ RoleName: roleNameOf(roleArn), PolicyName: policy.name, PolicyDocument: policy.document }));
  }

  async list(roleArn: string): Promise<readonly string[]> {
    const names: string[] = [];
    let marker: string | undefined;
    do {
      const out = await this.iam.send(new ListRolePoliciesCommand({ RoleName: roleNameOf(roleArn), ...(marker ? { Marker: marker } : {}) }));
      names.push(...(out.PolicyNames ?? []));
      marker = out.IsTruncated ? out.Marker : undefined;
    } while (marker);
    return names;
  }

  async remove(roleArn: string, name: string): Promise<void> {
    try {
      await this.iam.send(new DeleteRolePolicyCommand({ RoleName: roleNameOf(roleArn), PolicyName: name }));
    } catch (e) {
      if (e instanceof NoSuchEntityException || (e as { name?: string }).name === 'NoSuchEntity') return;
      throw e;
    }
  }
}
