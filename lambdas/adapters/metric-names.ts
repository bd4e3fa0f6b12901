/**
 * The CloudWatch metrics ackd publishes, in one place: the functions emit them (adapters/powertools.ts,
 * as EMF) and the CDK app alarms on them and graphs them (lib/constructs/observability.ts). No
 * dependency, so the CDK app can read it without loading Powertools.
 *
 * Every metric is in the namespace `ackd` with exactly one dimension, `stage` (ACKD_STAGE), so two
 * stages in one account never mix.
 */
export const METRICS_NAMESPACE = 'ackd';
export const STAGE_DIMENSION = 'stage';

/** Metric name → its unit (Powertools MetricUnit values, which are CloudWatch's unit names). */
export const METRICS = {
  /** An agent asked for authorization (event `requested`). */
  Requests: 'Count',
  /** A request was approved (event `approved`). */
  Approvals: 'Count',
  /** A request was denied (event `denied`). */
  Denials: 'Count',
  /** A pending request expired undecided (event `expired`). */
  Expiries: 'Count',
  /** An SVID was minted and handed out (event `svid_issued`). */
  SvidsMinted: 'Count',
  /** A consent email or another notification channel failed (events `email_failed`, `notify_failed`). */
  NotificationFailures: 'Count',
  /** From the request to its approval or denial (decision_at − requested_at). */
  TimeToDecisionMs: 'Milliseconds',
  /** From the approval to the SVID handed out (at − decision_at of `svid_issued`). */
  IssuanceLatencyMs: 'Milliseconds',
  /** How long the oldest audit event waited before the sequencer put it into the chain. */
  AuditSequencerLagMs: 'Milliseconds',
  /** Audit events the sequencer put into the chain in one run. */
  AuditEventsSequenced: 'Count',
  /** 1 when a run signed a checkpoint. */
  AuditCheckpointsSigned: 'Count',
  /** 1 when a run found the chain does not verify (nothing is signed then). */
  AuditVerifyFailures: 'Count',
  /** Log lines of the MCP function carrying code ERR_ISSUER_UNAVAILABLE (a log metric filter, not EMF). */
  IssuerUnavailable: 'Count',
  /** Outbox entries the audit sequencer refused (no valid seal, or a replay) and quarantined: its log lines with code ERR_AUDIT_ENTRY_REFUSED (a log metric filter, not EMF). */
  AuditEntriesRefused: 'Count',
} as const;

export type MetricName = keyof typeof METRICS;
