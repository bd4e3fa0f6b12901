import { randomBytes } from 'node:crypto';
import { AckdError, invalid } from './errors.ts';

/**
 * Domain identifiers, parsed once at the edge. A value of one of these types is valid by
 * construction: the only way to get one is through its `parse` function.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type AgentId = Brand<string, 'AgentId'>;
export type RequestId = Brand<string, 'RequestId'>;
export type TrustDomain = Brand<string, 'TrustDomain'>;
export type SvidId = Brand<string, 'SvidId'>;

/** SPIFFE path segment characters (SPIFFE ID spec §2.2). */
const SEGMENT = /^[A-Za-z0-9._-]+$/;

export function parseAgentId(value: unknown, field = 'agent_id'): AgentId {
  if (typeof value !== 'string') throw invalid(field, 'must be a string');
  if (value.length < 1 || value.length > 64) throw invalid(field, 'must be 1-64 characters long');
  if (!SEGMENT.test(value)) throw invalid(field, 'may contain only A-Z, a-z, 0-9, ".", "_" and "-"');
  if (value === '.' || value === '..') throw invalid(field, 'may not be "." or ".."');
  return value as AgentId;
}

/** `req_` followed by 26 lowercase base32 characters (130 random bits, time-ordered prefix). */
const REQUEST_ID = /^req_[0-9a-z]{26}$/;

export function parseRequestId(value: unknown, field = 'request_id'): RequestId {
  if (typeof value !== 'string') throw invalid(field, 'must be a string');
  if (!REQUEST_ID.test(value)) throw invalid(field, 'must look like req_ followed by 26 characters [0-9a-z]');
  return value as RequestId;
}

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/** A new request id: 10 characters of millisecond time (sortable) then 16 random characters. */
export function newRequestId(nowMs: number): RequestId {
  return timeOrderedId('req_', nowMs) as RequestId;
}

/** A new audit event id, same shape as a request id with prefix `evt_`. */
let lastEventMs = 0;

/**
 * Event ids sort in the order this process made them, also within one millisecond: the time part
 * never goes back (a later call in the same or an earlier millisecond takes the last time + 1 ms
 * of ordering room only when needed). The outbox index orders waiting events by their time and
 * id, so two changes made back to back are sequenced in the order they were made.
 */
export function newEventId(nowMs: number): string {
  const t = Math.max(Math.floor(nowMs), lastEventMs + 1);
  lastEventMs = t;
  return timeOrderedId('evt_', t);
}

function timeOrderedId(prefix: string, nowMs: number): string {
  let time = '';
  let t = Math.floor(nowMs);
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[bytes[i]! % 32];
  return `${prefix}${time}${rand}`;
}

/** Trust domain name: lowercase letters, digits, dots, dashes and underscores (SPIFFE ID spec §2.1). */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;

export function parseTrustDomain(value: unknown, field = 'trust_domain'): TrustDomain {
  if (typeof value !== 'string' || !TRUST_DOMAIN.test(value) || value === '.' || value === '..') {
    throw invalid(field, 'must be a SPIFFE trust domain name (lowercase a-z, 0-9, ".", "-", "_")');
  }
  return value as TrustDomain;
}

/** svid_id: the leaf certificate's serial number in lowercase hex. */
export function parseSvidId(value: unknown, field = 'svid_id'): SvidId {
  if (typeof value !== 'string') throw invalid(field, 'must be a string');
  if (!/^[0-9a-f]{1,64}$/.test(value)) throw invalid(field, 'must be a certificate serial number in lowercase hex');
  return value as SvidId;
}

/** Normalizes a serial number (any case, optional leading zeros) to ackd's svid_id form. */
export function svidIdFromSerial(serialHex: string): SvidId {
  const s = serialHex.toLowerCase().replace(/^0+(?=.)/, '');
  return parseSvidId(s);
}

/** The SPIFFE ID of one authorization: spiffe://{td}/agent/{agent_id}/{request_id}. */
export class SpiffeId {
  private constructor(
    readonly trustDomain: TrustDomain,
    readonly agentId: AgentId,
    readonly requestId: RequestId,
  ) {}

  static forRequest(trustDomain: TrustDomain, agentId: AgentId, requestId: RequestId): SpiffeId {
    return new SpiffeId(trustDomain, agentId, requestId);
  }

  /** Parses an ackd SVID's SPIFFE ID; anything else is refused with ERR_INVALID_INPUT. */
  static parse(value: string, field = 'spiffe_id'): SpiffeId {
    const m = /^spiffe:\/\/([^/]+)\/agent\/([^/]+)\/([^/]+)$/.exec(value);
    if (!m) throw invalid(field, 'must be spiffe://<trust domain>/agent/<agent_id>/<request_id>');
    try {
      return new SpiffeId(parseTrustDomain(m[1]), parseAgentId(m[2]), parseRequestId(m[3]));
    } catch (e) {
      if (e instanceof AckdError) throw invalid(field, `not an ackd SPIFFE ID (${e.message})`);
      throw e;
    }
  }

  get path(): string {
    return `/agent/${this.agentId}/${this.requestId}`;
  }

  toString(): string {
    return `spiffe://${this.trustDomain}${this.path}`;
  }
}
