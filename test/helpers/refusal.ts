import { isAckdError, type AckdError } from '../../lambdas/core/errors.ts';

/** The AckdError `p` is refused with; fails the test when it succeeds or throws anything else. */
export async function refusal(p: Promise<unknown>): Promise<AckdError> {
  try {
    await p;
  } catch (e) {
    if (isAckdError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}
