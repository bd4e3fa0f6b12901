import { createHash, verify, type KeyObject } from 'node:crypto';
import { canonicalJson, sha256Hex } from './jcs.ts';
import { checkpointPublicKey, keyIdOf, type CheckpointSigner } from './audit/signing.ts';
import { payloadSha256 } from './payload.ts';
import type { CastVote } from './quorum.ts';
import type { AuthorizationRecord } from './request.ts';
import { approvalView, viewSha256 } from './view.ts';

/**
 * What a human's decision carries besides its verdict: the evidence that binds it to what they saw
 * and to them. Every edge that decides (consent API, CLI) passes it to AuthorizationService.decide.
 */

/**
 * A WebAuthn assertion exactly as the authenticator produced it (base64url fields, as
 * @simplewebauthn/browser returns them), plus the single-use nonce its challenge was made from.
 * Stored raw on the decision and in its audit event, so anyone holding the approver's registered
 * public key can verify it later.
 */
export interface PasskeyAssertion {
  readonly credential_id: string;
  readonly authenticator_data: string;
  readonly client_data_json: string;
  readonly signature: string;
  readonly user_handle: string | null;
  /** The server-issued single-use nonce of the challenge. */
  readonly nonce: string;
}

export interface DecisionEvidence {
  /** SHA-256 of the canonical view the approver decided on (core/view.ts); null when the edge shows no view (CLI). */
  readonly view_sha256?: string | null;
  /** The approver's passkey assertion over this decision; null or absent without one. */
  readonly passkey?: PasskeyAssertion | null;
}

/** Lowercase hex SHA-256 over the assertion's canonical JSON: what a signed decision and a receipt commit to. */
export function assertionSha256(a: PasskeyAssertion): string {
  return sha256Hex(canonicalJson(a));
}

// ---- signed decisions (issue 13, item 4) ----

/**
 * What the decision service signs for every deciding write (the approval or the denial): exactly
 * what was decided, by whom, when, on what. Signed over its RFC 8785 canonical JSON with a key
 * only the decision service can use (ACKD_DECISION_KEY: KMS on AWS, a local key under `npm
 * start`), so a table writer alone can no longer make an approval the minter accepts.
 */
export interface DecisionStatement {
  readonly v: 1;
  readonly purpose: 'ackd-decision';
  readonly request_id: string;
  readonly agent_id: string;
  readonly spiffe_id: string;
  readonly permissions: readonly string[];
  readonly decision: 'approved' | 'denied';
  /** approver_identity of the deciding vote: a Cognito sub, or `operator:<name>`. */
  readonly approver: string;
  readonly decided_at: string;
  /** The approved SVID lifetime bound; null for a denial. */
  readonly svid_expires_at: string | null;
  readonly payload_sha256: string | null;
  /** SHA-256 of the view the approver decided on (core/view.ts); null where none was shown (CLI). */
  readonly view_sha256: string | null;
  /** `assertionSha256` of the approver's passkey assertion over this decision; null without one. */
  readonly passkey_assertion_sha256: string | null;
  /** SHA-256 of the canonical JSON of every vote cast, the deciding one last. */
  readonly votes_sha256: string;
}

/** ECDSA P-256 / SHA-256, DER signature (the same as checkpoints; KMS `ECDSA_SHA_256` on an ECC_NIST_P256 key). */
export const DECISION_ALG = 'ECDSA_P256_SHA256';

/** A decision statement with its signature, as stored on the request item and in the decision's audit event. */
export interface SignedDecision {
  readonly statement: DecisionStatement;
  /** Lowercase hex SHA-256 of the signing key's DER SubjectPublicKeyInfo. */
  readonly key_id: string;
  readonly alg: typeof DECISION_ALG;
  /** base64 DER ECDSA signature over `decisionPayload(statement)`. */
  readonly signature: string;
}

/** Signs decision statements: the CheckpointSigner port (a local PEM key or AWS KMS) with a second key. */
export type DecisionSigner = CheckpointSigner;

/** SHA-256 of the canonical JSON of the votes (what a statement commits to). */
export function votesSha256(votes: readonly CastVote[]): string {
  return sha256Hex(canonicalJson(votes));
}

/** The statement of a deciding write: the request as stored plus what the write sets. */
export function decisionStatement(
  r: Pick<AuthorizationRecord, 'request_id' | 'agent_id' | 'spiffe_id' | 'permissions' | 'payload_sha256'>,
  d: {
    readonly decision: 'approved' | 'denied';
    readonly approver: string;
    readonly decidedAt: string;
    readonly svidExpiresAt: string | null;
    /** Every vote after this write (the deciding vote last). */
    readonly votes: readonly CastVote[];
    readonly evidence?: DecisionEvidence | undefined;
  },
): DecisionStatement {
  return {
    v: 1,
    purpose: 'ackd-decision',
    request_id: r.request_id,
    agent_id: r.agent_id,
    spiffe_id: r.spiffe_id,
    permissions: [...r.permissions],
    decision: d.decision,
    approver: d.approver,
    decided_at: d.decidedAt,
    svid_expires_at: d.svidExpiresAt,
    payload_sha256: r.payload_sha256 ?? null,
    view_sha256: d.evidence?.view_sha256 ?? null,
    passkey_assertion_sha256: d.evidence?.passkey ? assertionSha256(d.evidence.passkey) : null,
    votes_sha256: votesSha256(d.votes),
  };
}

/** The exact bytes a decision signature covers: the statement's canonical JSON (UTF-8). */
export function decisionPayload(s: DecisionStatement): Uint8Array {
  return new TextEncoder().encode(canonicalJson(s));
}

/** Signs `statement` with the decision key. Throws what the signer throws (ERR_SIGNER_UNAVAILABLE). */
export async function signDecision(signer: DecisionSigner, statement: DecisionStatement): Promise<SignedDecision> {
  const key = checkpointPublicKey(await signer.publicKeyPem());
  const signature = Buffer.from(await signer.sign(decisionPayload(statement))).toString('base64');
  return { statement, key_id: keyIdOf(key), alg: DECISION_ALG, signature };
}

/** Lowercase hex SHA-256 of the signature bytes (what a receipt names as `decision_signature_sha256`). */
export function decisionSignatureSha256(sd: Pick<SignedDecision, 'signature'>): string {
  return createHash('sha256').update(Buffer.from(sd.signature, 'base64')).digest('hex');
}

/** Why `sd` is not a signature of the decision key over its statement; null when it is. */
export function decisionSignatureProblem(sd: SignedDecision, key: KeyObject, keyId = keyIdOf(key)): string | null {
  if (typeof sd !== 'object' || sd === null || typeof sd.statement !== 'object' || sd.statement === null || typeof sd.signature !== 'string') return 'its signed decision is malformed';
  if (sd.alg !== DECISION_ALG) return `its decision signature uses algorithm ${String(sd.alg)}, expected ${DECISION_ALG}`;
  if (sd.key_id !== keyId) return `its decision was signed by key ${String(sd.key_id).slice(0, 16)}…, not by the decision key (${keyId.slice(0, 16)}…)`;
  if (sd.statement.v !== 1 || sd.statement.purpose !== 'ackd-decision') return 'its signed statement is not an ackd decision (v 1, purpose ackd-decision)';
  let ok: boolean;
  try {
    ok = verify('sha256', decisionPayload(sd.statement), { key, dsaEncoding: 'der' }, Buffer.from(sd.signature, 'base64'));
  } catch {
    ok = false; // (not a DER signature at all)
  }
  return ok ? null : 'its decision signature does not verify (forged or altered)';
}

/**
 * What a decided request (a record, or a decision's audit event) says the statement must hold, as
 * it stands now: only the fields it has (an audit event has no spiffe_id; a record without a
 * payload field predates payloads), and the view recomputed where the record can show it.
 */
export type DecisionSubject = Partial<Pick<AuthorizationRecord, 'spiffe_id' | 'payload' | 'payload_sha256' | 'ttl_minutes' | 'expires_at'>> &
  Pick<AuthorizationRecord, 'request_id' | 'agent_id' | 'permissions' | 'decision' | 'approver_identity' | 'decision_at' | 'svid_expires_at'> & {
    readonly votes?: readonly CastVote[];
    readonly action?: string;
    readonly justification?: string;
  };

/** The statement fields on which `sd` and `subject` differ; [] when the signed decision is of exactly this request as it stands. */
export function statementMismatch(s: DecisionStatement, subject: DecisionSubject): string[] {
  const want: Partial<Record<keyof DecisionStatement, unknown>> = {
    request_id: subject.request_id,
    agent_id: subject.agent_id,
    permissions: subject.permissions,
    decision: subject.decision,
    approver: subject.approver_identity,
    decided_at: subject.decision_at,
    svid_expires_at: subject.svid_expires_at,
    votes_sha256: votesSha256(subject.votes ?? []),
  };
  if (subject.spiffe_id !== undefined) want.spiffe_id = subject.spiffe_id;
  if (subject.payload_sha256 !== undefined) want.payload_sha256 = subject.payload_sha256;
  // The view the approver signed off must still be what the request shows (nothing it showed changed since).
  if (s.view_sha256 !== null && subject.ttl_minutes !== undefined && subject.expires_at !== undefined && subject.action !== undefined && subject.justification !== undefined) {
    want.view_sha256 = viewSha256(approvalView({ ...subject, action: subject.action, justification: subject.justification, ttl_minutes: subject.ttl_minutes, expires_at: subject.expires_at }));
  }
  // A passkey assertion kept on the deciding vote must be the one the statement names.
  const passkey = subject.votes?.at(-1)?.passkey?.assertion;
  if (passkey) want.passkey_assertion_sha256 = assertionSha256(passkey);
  const differ = (Object.keys(want) as (keyof DecisionStatement)[]).filter((k) => canonicalJson(s[k] ?? null) !== canonicalJson(want[k] ?? null));
  // The payload itself must still hash to the digest signed (as well as the record's digest field).
  if (subject.payload !== undefined && subject.payload !== null && payloadSha256(subject.payload) !== s.payload_sha256 && !differ.includes('payload_sha256')) differ.push('payload_sha256');
  return differ;
}

/**
 * Why a decided request may not be trusted as decided by the decision service; null when its
 * signed decision verifies under `key` and states exactly the decision it records.
 */
export function decisionProblem(subject: DecisionSubject & { readonly decision_signature?: SignedDecision | null }, key: KeyObject, keyId = keyIdOf(key)): string | null {
  const sd = subject.decision_signature;
  if (sd === undefined || sd === null) return 'it carries no signed decision';
  const bad = decisionSignatureProblem(sd, key, keyId);
  if (bad) return bad;
  const differ = statementMismatch(sd.statement, subject);
  return differ.length > 0 ? `its signed decision states another ${differ.join(', ')} than the request records` : null;
}
