import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { createSealKeyFileOnce, fileOutboxSealer, kmsOutboxSealer, outboxSealerFrom } from '../../lambdas/adapters/signing/outbox-seal.ts';
import { loadConfig } from '../../lambdas/config.ts';
import { auditEvent, chainAdminEvent, GENESIS_HASH, type PendingEvent } from '../../lambdas/core/audit/event.ts';
import { deriveLocalKey, HmacOutboxSealer, SEAL_KEY_LABEL, sealInput, unavailableSealer, type SealPlace } from '../../lambdas/core/audit/seal.ts';
import { Sequencer, type OutboxEntry } from '../../lambdas/core/audit/sequencer.ts';
import { ChainVerifier } from '../../lambdas/core/audit/verify.ts';
import type { AgentId, RequestId } from '../../lambdas/core/ids.ts';
import type { Logger } from '../../lambdas/core/ports.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

const place: SealPlace = { kind: 'request', request_id: 'req_01' };
const event: PendingEvent = { event_id: 'evt_01', type: 'approved', at: '2026-01-01T00:00:00.000Z', actor_type: 'approver', actor_id: 'sub-alice', reason: null };
const entry: OutboxEntry = { event, row: 'approve', params: { now: '2026-01-01T00:00:00.000Z', approver: 'sub-alice', seen: 0, list: [1, 2.5, 'x'] } };

describe('outbox seal: seal and check', () => {
  const key = randomBytes(32);
  const sealer = HmacOutboxSealer.withKey(key);

  it('a sealed entry checks at its own place; the MAC input is JCS of purpose, version, place and the entry without its seal', async () => {
    const seal = await sealer.seal(place, entry);
    expect(seal).toMatch(/^v1\.[A-Za-z0-9_-]{43}$/);
    expect(await sealer.check(place, { ...entry, seal }, seal)).toEqual({ ok: true });
    expect(sealInput(place, { ...entry, seal })).toBe(sealInput(place, entry));
    expect(sealInput(place, entry).startsWith('{"entry":{"event":')).toBe(true);
    expect(sealInput(place, entry)).toContain('"place":{"kind":"request","request_id":"req_01"},"purpose":"ackd-outbox-entry","v":1}');
    // Anyone with the key can recompute it: HMAC-SHA256 over that text.
    expect(seal.slice(3)).toBe(createHmac('sha256', key).update(sealInput(place, entry)).digest('base64url'));
    // Key order and undefined fields do not matter (JCS), as after a round trip through DynamoDB.
    const reordered = { params: { list: [1, 2.5, 'x'], seen: 0, approver: 'sub-alice', now: '2026-01-01T00:00:00.000Z', gone: undefined }, row: 'approve', event: { ...event } };
    expect(await sealer.check(place, reordered, seal)).toEqual({ ok: true });
  });

  it('any field changed, added or removed fails', async () => {
    const seal = await sealer.seal(place, entry);
    const variants: object[] = [
      { ...entry, event: { ...event, type: 'denied' } },
      { ...entry, event: { ...event, actor_id: 'sub-mallory' } },
      { ...entry, event: { ...event, at: '2026-01-01T00:00:00.001Z' } },
      { ...entry, event: { ...event, event_id: 'evt_02' } },
      { ...entry, row: 'deny' },
      { ...entry, params: { ...entry.params, seen: 1 } },
      { ...entry, params: { ...entry.params, list: [1, 2.5] } },
      { ...entry, snapshot: { decision: 'approved' } },
      { event, row: 'approve' },
    ];
    for (const v of variants) expect(await sealer.check(place, v, seal), JSON.stringify(v)).toMatchObject({ ok: false, reason: 'mismatch' });
  });

  it('fails for another item, another kind of place, another key or another label; missing and malformed seals are named', async () => {
    const seal = await sealer.seal(place, entry);
    expect(await sealer.check({ kind: 'request', request_id: 'req_02' }, entry, seal)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(await sealer.check({ kind: 'admin', event_id: 'req_01' }, entry, seal)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(await HmacOutboxSealer.withKey(randomBytes(32)).check(place, entry, seal)).toMatchObject({ ok: false, reason: 'mismatch' });
    // The same file key under another label is another key.
    const fileKey = randomBytes(32);
    const otherLabel = createHmac('sha256', fileKey).update('ackd-outbox-seal-v2').digest();
    const sealedV1 = await HmacOutboxSealer.withKey(deriveLocalKey(fileKey)).seal(place, entry);
    expect(await HmacOutboxSealer.withKey(otherLabel).check(place, entry, sealedV1)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(await HmacOutboxSealer.withKey(deriveLocalKey(fileKey)).check(place, entry, sealedV1)).toEqual({ ok: true });
    expect(await sealer.check(place, entry, undefined)).toMatchObject({ ok: false, reason: 'missing' });
    expect(await sealer.check(place, entry, null)).toMatchObject({ ok: false, reason: 'missing' });
    for (const bad of ['', 'v1.', `v2.${seal.slice(3)}`, seal.slice(0, -1), `${seal}A`, 42, { v: 1 }]) {
      expect(await sealer.check(place, entry, bad), String(bad)).toMatchObject({ ok: false, reason: 'malformed' });
    }
  });

  it('a key shorter than 32 bytes, or none, refuses to seal or check (fail closed); a failed derivation is tried again', async () => {
    await expect(HmacOutboxSealer.withKey(randomBytes(16)).seal(place, entry)).rejects.toMatchObject({ code: 'ERR_SIGNER_UNAVAILABLE' });
    await expect(unavailableSealer().seal(place, entry)).rejects.toThrow(/ACKD_OUTBOX_SEAL_KEY is not set/);
    await expect(unavailableSealer().check(place, entry, 'v1.x')).rejects.toMatchObject({ code: 'ERR_SIGNER_UNAVAILABLE' });
    let calls = 0;
    const flaky = new HmacOutboxSealer(() => (++calls === 1 ? Promise.reject(new Error('down')) : Promise.resolve(randomBytes(32))));
    await expect(flaky.seal(place, entry)).rejects.toThrow('down');
    await flaky.seal(place, entry);
    await flaky.seal(place, entry);
    expect(calls).toBe(2);
  });

  it('KMS: one GenerateMac of the label (HMAC_SHA_256) per process, its MAC the key (test double for KMS: a real KMS cannot run here)', async () => {
    const kmsKey = randomBytes(32);
    const sent: { name: string; input: Record<string, unknown> }[] = [];
    const client = {
      send: (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
        sent.push({ name: command.constructor.name, input: command.input });
        // What KMS computes for an HMAC_256 key: HMAC-SHA256 of the message.
        return Promise.resolve({ Mac: createHmac('sha256', kmsKey).update(command.input.Message as Uint8Array).digest() });
      },
    };
    const sealer = kmsOutboxSealer('arn:aws:kms:us-east-1:123456789012:key/seal', client as never);
    const seals = await Promise.all([1, 2, 3].map((n) => sealer.seal(place, { ...entry, n })));
    expect(sent).toHaveLength(1);
    expect(sent[0]!.name).toBe('GenerateMacCommand');
    expect(sent[0]!.input).toMatchObject({ KeyId: 'arn:aws:kms:us-east-1:123456789012:key/seal', MacAlgorithm: 'HMAC_SHA_256' });
    expect(Buffer.from(sent[0]!.input.Message as Uint8Array).toString()).toBe(SEAL_KEY_LABEL);
    // The same key as a local file key derives: HMAC(key, label).
    expect(await HmacOutboxSealer.withKey(deriveLocalKey(kmsKey)).check(place, { ...entry, n: 1 }, seals[0])).toEqual({ ok: true });
    const denied = kmsOutboxSealer('k', { send: () => Promise.reject(Object.assign(new Error('no'), { name: 'AccessDeniedException' })) } as never);
    await expect(denied.seal(place, entry)).rejects.toThrow(/ACKD_OUTBOX_SEAL_KEY: KMS GenerateMac with k failed \(AccessDeniedException\)/);
  });
});

const clock = { now: () => new Date() };
const rid = (n: number) => `req_${String(n).padStart(26, '0')}` as RequestId;

function recordingLogger(): Logger & { errors: Record<string, unknown>[] } {
  const errors: Record<string, unknown>[] = [];
  return { info: () => undefined, warn: () => undefined, error: (_m: string, f?: Record<string, unknown>) => void errors.push(f ?? {}), errors };
}

async function create(store: MemoryRequestStore, n: number): Promise<void> {
  const now = clock.now();
  await store.create(pendingRecord({ request_id: rid(n), agent_id: 'deploy-bot' as AgentId, requested_at: now.toISOString() }, now), 0, auditEvent('requested', { type: 'agent', id: 'deploy-bot' }, now));
}

async function verify(store: MemoryRequestStore): Promise<ReturnType<ChainVerifier['finish']>> {
  const head = await store.head();
  const v = new ChainVerifier();
  for await (const e of store.events(1, head.seq)) v.addEvent(structuredClone(e));
  return v.finish();
}

/** An operator change written through the store (sealed), and a copy of its item as a table writer would take it. */
async function enqueueAndCopy(mem: MemoryRequestStore, c: { now: () => Date }): Promise<{ itemEventId: string; entry: unknown }> {
  const event = { ...auditEvent('owner_set', { type: 'operator', id: 'ops' }, c.now()), type: 'owner_set' as const };
  await mem.enqueueAdmin(event, { agent_id: 'deploy-bot', owner: 'alice', previous_owner: null });
  const written = (await mem.pending(100)).find((p) => p.kind === 'admin' && p.itemEventId === event.event_id) as { itemEventId: string; event: PendingEvent; change: unknown; seal: string };
  return { itemEventId: written.itemEventId, entry: structuredClone({ event: written.event, change: written.change, seal: written.seal }) };
}

describe('the sequencer admits sealed entries only', () => {
  it('quarantines forged and copied entries, logs each, and still sequences the genuine ones around them', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    const logger = recordingLogger();
    const sequencer = new Sequencer({ store: mem, clock, logger, sealer: mem.sealer });
    await create(mem, 1);
    await create(mem, 2);
    await sequencer.run({ nudged: true });
    const now = clock.now();
    // (1) a forged tool_call item, (2) a forged approval in a pending request's outbox, (3) a genuine sealed entry copied into another item,
    // (5) an entry sealed with another key.
    mem.writeRawAdminItem('evt_forged', { event: { ...auditEvent('tool_call', { type: 'agent', id: 'deploy-bot' }, now), event_id: 'evt_forged' }, change: { call: { server: 's', tool: 't', effect: 'read', outcome: 'allowed', payload_sha256: 'a'.repeat(64), caller: null, request_id: null, result_sha256: null, reason: null } } });
    mem.writeRawOutboxEntry(rid(1), { event: auditEvent('approved', { type: 'approver', id: 'sub-mallory' }, now), row: 'approve', params: { now: now.toISOString(), approver: 'sub-mallory' } });
    await mem.apply('recordRefusal', rid(2), {}, auditEvent('refused', { type: 'agent', id: 'deploy-bot' }, now, 'genuine'));
    const [source] = (await mem.pending(10)).filter((s) => s.kind === 'request' && s.requestId === rid(2));
    const genuine = (source as unknown as { entries: OutboxEntry[] }).entries[0]!;
    mem.writeRawOutboxEntry(rid(1), structuredClone(genuine));
    const otherKey = HmacOutboxSealer.random();
    const foreign = { event: auditEvent('denied', { type: 'approver', id: 'sub-alice' }, now), row: 'deny', params: {} };
    mem.writeRawOutboxEntry(rid(1), { ...foreign, seal: await otherKey.seal({ kind: 'request', request_id: rid(1) }, foreign) });
    // A genuine event of request 1 after the forged ones: it must not be blocked.
    await mem.apply('recordRefusal', rid(1), {}, auditEvent('refused', { type: 'agent', id: 'deploy-bot' }, clock.now(), 'genuine too'));

    const run = await sequencer.run({ nudged: true });
    expect(run.refused).toBe(4);
    expect(run.sequenced).toBe(2);
    const events = mem.chainEvents();
    // (the two requests' waiting events in the order of their oldest waiting entry)
    expect(events.map((e) => [e.type, e.reason]).sort()).toEqual([
      ['refused', 'genuine'],
      ['refused', 'genuine too'],
      ['requested', null],
      ['requested', null],
    ]);
    expect(events.find((e) => e.type === 'refused' && e.reason === 'genuine too')!.request_id).toBe(rid(1));
    expect((await verify(mem)).problems).toEqual([]);
    // Each is quarantined with the reason, logged as an error naming the event and the item; nothing waits any more.
    expect(mem.quarantined.map((q) => [q.source, q.reason]).sort()).toEqual([
      ['audit#admin#evt_forged', 'missing'],
      [`req#${rid(1)}`, 'mismatch'],
      [`req#${rid(1)}`, 'mismatch'],
      [`req#${rid(1)}`, 'missing'],
    ]);
    expect(logger.errors).toHaveLength(4);
    expect(logger.errors.find((e) => e.item === 'audit#admin#evt_forged')).toMatchObject({ code: 'ERR_AUDIT_ENTRY_REFUSED', reason: 'missing', event_id: 'evt_forged', type: 'tool_call' });
    expect(logger.errors.find((e) => e.type === 'approved')).toMatchObject({ code: 'ERR_AUDIT_ENTRY_REFUSED', reason: 'missing', item: `req#${rid(1)}`, request_id: rid(1) });
    expect(await mem.pending(10)).toEqual([]);
    expect((await sequencer.run()).sequenced).toBe(0);
  });

  it('a genuine admin item written back after it was sequenced is refused as a duplicate, also by a sequencer that starts afterwards', async () => {
    let nowMs = Date.parse('2026-03-01T10:00:00.000Z');
    const manual = { now: () => new Date(nowMs) };
    const mem = new MemoryRequestStore(manual, { autoSequence: false });
    const logger = recordingLogger();
    const copy = await enqueueAndCopy(mem, manual);
    const sequencer = new Sequencer({ store: mem, clock: manual, logger, sealer: mem.sealer });
    expect((await sequencer.run({ nudged: true })).sequenced).toBe(1);
    // Written back as it was: the same sequencer knows the id.
    mem.writeRawAdminItem(copy.itemEventId, copy.entry);
    expect(await sequencer.run({ nudged: true })).toMatchObject({ sequenced: 0, refused: 1 });
    expect(mem.quarantined.at(-1)).toMatchObject({ reason: 'duplicate' });
    // A new sequencer (a cold start) reads the newest events' ids once before it admits anything.
    nowMs += 10 * 60_000;
    mem.writeRawAdminItem(copy.itemEventId, copy.entry);
    expect(await new Sequencer({ store: mem, clock: manual, logger, sealer: mem.sealer }).run({ nudged: true })).toMatchObject({ sequenced: 0, refused: 1 });
    expect(mem.quarantined.at(-1)).toMatchObject({ reason: 'duplicate' });
    expect(mem.chainEvents().map((e) => e.type)).toEqual(['owner_set']);
  });

  it('a genuine entry written back that is older than every event a sequencer knows is refused as stale', async () => {
    let nowMs = Date.parse('2026-03-01T10:00:00.000Z');
    const manual = { now: () => new Date(nowMs) };
    const mem = new MemoryRequestStore(manual, { autoSequence: false });
    const logger = recordingLogger();
    const step = async () => {
      nowMs += 60_000;
      const c = await enqueueAndCopy(mem, manual);
      await new Sequencer({ store: mem, clock: manual, logger, sealer: mem.sealer }).run({ nudged: true });
      return c;
    };
    const first = await step();
    for (let i = 0; i < 3; i++) await step();
    // A starting sequencer that reads only the newest 2 events: the first is not among them, and it is older.
    mem.writeRawAdminItem(first.itemEventId, first.entry);
    expect(await new Sequencer({ store: mem, clock: manual, logger, sealer: mem.sealer, seedEvents: 2 }).run({ nudged: true })).toMatchObject({ sequenced: 0, refused: 1 });
    expect(mem.quarantined.at(-1)).toMatchObject({ reason: 'stale' });
    // A long-running sequencer that remembers only 2 ids: what it forgot is older than its floor.
    const sequencer = new Sequencer({ store: mem, clock: manual, logger, sealer: mem.sealer, idMemory: 2 });
    const forgotten = await enqueueAndCopy(mem, manual);
    await sequencer.run({ nudged: true });
    for (let i = 0; i < 3; i++) {
      nowMs += 60_000;
      await enqueueAndCopy(mem, manual);
      await sequencer.run({ nudged: true });
    }
    mem.writeRawAdminItem(forgotten.itemEventId, forgotten.entry);
    expect(await sequencer.run({ nudged: true })).toMatchObject({ sequenced: 0, refused: 1 });
    expect(mem.quarantined.at(-1)).toMatchObject({ reason: 'stale' });
    // Genuine entries, even from a writer whose clock is hours behind, are not stale while the sequencer knows the whole log.
    const behind = { now: () => new Date(nowMs - 3 * 3_600_000) };
    await enqueueAndCopy(mem, behind);
    expect(await new Sequencer({ store: mem, clock: manual, logger, sealer: mem.sealer }).run({ nudged: true })).toMatchObject({ sequenced: 1, refused: 0 });
    expect(new Set(mem.chainEvents().map((e) => e.event_id)).size).toBe(mem.chainEvents().length);
  });

  it("a stopped run's slots beyond the head are not mistaken for replays by the next sequencer: adopted, nothing refused", async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    await create(mem, 1);
    await new Sequencer({ store: mem, clock, logger: recordingLogger(), sealer: mem.sealer }).run({ nudged: true });
    for (let n = 2; n <= 4; n++) await create(mem, n);
    // A run that wrote its events into their slots and stopped before the head moved over them.
    const dying = new Proxy(mem, {
      get(target, prop, receiver) {
        if (prop === 'putNodes') return () => Promise.reject(new Error('process killed'));
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    await expect(new Sequencer({ store: dying, clock, logger: recordingLogger(), sealer: mem.sealer }).run({ nudged: true })).rejects.toThrow('process killed');
    expect((await mem.recentEvents(10)).map((e) => e.seq)).toEqual([4, 3, 2, 1]);
    const logger = recordingLogger();
    const run = await new Sequencer({ store: mem, clock, logger, sealer: mem.sealer }).run({ nudged: true });
    expect(run.refused).toBe(0);
    expect(logger.errors).toEqual([]);
    expect(mem.quarantined).toEqual([]);
    expect(await mem.pending(10)).toEqual([]);
    expect((await verify(mem)).problems).toEqual([]);
    expect(mem.chainEvents()).toHaveLength(4);
  });

  it('upgrade: unsealed entries are refused, unless written before ACKD_OUTBOX_UNSEALED_BEFORE', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    const before = auditEvent('owner_set', { type: 'operator', id: 'ops' }, new Date(Date.now() - 60_000));
    const after = auditEvent('owner_set', { type: 'operator', id: 'ops' }, new Date());
    const change = { agent_id: 'deploy-bot', owner: 'alice', previous_owner: null };
    mem.writeRawAdminItem(before.event_id, { event: before, change });
    mem.writeRawAdminItem(after.event_id, { event: after, change });
    const cutoff = new Date(Date.now() - 30_000).toISOString();
    const run = await new Sequencer({ store: mem, clock, logger: recordingLogger(), sealer: mem.sealer, admitUnsealedBefore: cutoff }).run({ nudged: true });
    expect(run).toMatchObject({ sequenced: 1, refused: 1 });
    expect(mem.chainEvents().map((e) => e.event_id)).toEqual([before.event_id]);
    expect(mem.quarantined.map((q) => q.reason)).toEqual(['missing']);
  });

  it('a sequencer whose key is unavailable refuses nothing and sequences nothing: the run fails and everything waits', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    await create(mem, 1);
    await expect(new Sequencer({ store: mem, clock, logger: recordingLogger(), sealer: unavailableSealer() }).run({ nudged: true })).rejects.toMatchObject({ code: 'ERR_SIGNER_UNAVAILABLE' });
    expect(mem.quarantined).toEqual([]);
    expect(await mem.pending(10)).toHaveLength(1);
    expect((await new Sequencer({ store: mem, clock, logger: recordingLogger(), sealer: mem.sealer }).run({ nudged: true })).sequenced).toBe(1);
  });

  it('a batch of forged admin items does not stall the outbox: the genuine item behind them is sequenced in the same run', async () => {
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    const old = new Date(Date.now() - 60_000);
    for (let i = 0; i < 7; i++) {
      const e = { ...auditEvent('tool_call', { type: 'agent', id: 'x' }, old), event_id: `evt_forged_${i}` };
      mem.writeRawAdminItem(e.event_id, { event: e, change: { call: {} } });
    }
    await create(mem, 1);
    const run = await new Sequencer({ store: mem, clock, logger: recordingLogger(), sealer: mem.sealer, batch: 3 }).run({ nudged: true });
    expect(run).toMatchObject({ refused: 7, sequenced: 1 });
  });
});

describe('verification finds a replayed event', () => {
  it('an event id logged twice is a problem (kind order), naming the event', () => {
    // What a sequencer that did not look for replays (a version before sealing) would have logged: the same operator change twice.
    const event = { ...auditEvent('owner_set', { type: 'operator', id: 'ops' }, clock.now()), type: 'owner_set' as const };
    const change = { agent_id: 'a', owner: 'alice', previous_owner: null };
    const first = chainAdminEvent(event, change, { seq: 0, hash: GENESIS_HASH, logged_at: null }, clock.now());
    const again = chainAdminEvent(event, change, { seq: 1, hash: first.hash, logged_at: first.logged_at }, clock.now());
    const v = new ChainVerifier();
    v.addEvent(structuredClone(first));
    v.addEvent(structuredClone(again));
    expect(v.finish().problems).toEqual([expect.objectContaining({ kind: 'order', seq: 2, message: expect.stringContaining(`event_id ${event.event_id} was already logged`) })]);
    // Once is fine.
    const once = new ChainVerifier();
    once.addEvent(structuredClone(first));
    expect(once.finish().problems).toEqual([]);
  });
});

describe('the seal key settings', () => {
  it('ACKD_OUTBOX_SEAL_KEY: kms:<key> anywhere, a key file only locally; ACKD_OUTBOX_UNSEALED_BEFORE must be an ISO UTC time', () => {
    const prod = { ACKD_STAGE: 'prod', ACKD_TRUST_DOMAIN: 'ackd.example', ACKD_TABLE_NAME: 't', ACKD_CONSENT_URL: 'https://x.example' };
    expect(loadConfig({ ...prod, ACKD_OUTBOX_SEAL_KEY: 'kms:arn:aws:kms:eu-west-1:123456789012:key/abc' }).outboxSealKey).toBe('kms:arn:aws:kms:eu-west-1:123456789012:key/abc');
    expect(() => loadConfig({ ...prod, ACKD_OUTBOX_SEAL_KEY: '/tmp/seal.key' })).toThrow(/ACKD_OUTBOX_SEAL_KEY: must be kms:/);
    expect(() => loadConfig({ ...prod, ACKD_OUTBOX_SEAL_KEY: 'kms:' })).toThrow(/ACKD_OUTBOX_SEAL_KEY: kms: must name a key/);
    expect(loadConfig({ ACKD_OUTBOX_SEAL_KEY: '/tmp/seal.key' }).outboxSealKey).toBe('/tmp/seal.key');
    expect(loadConfig({}).outboxSealKey).toBeUndefined();
    expect(loadConfig({ ACKD_OUTBOX_UNSEALED_BEFORE: '2026-01-31T12:00:00Z' }).outboxUnsealedBefore).toBe('2026-01-31T12:00:00Z');
    expect(() => loadConfig({ ACKD_OUTBOX_UNSEALED_BEFORE: 'yesterday' })).toThrow(/ACKD_OUTBOX_UNSEALED_BEFORE: must be an ISO-8601 UTC time/);
  });

  it('the local key file: 32 random bytes in hex, owner-only, made once; a bad file is refused naming the setting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ackd-seal-'));
    try {
      const path = join(dir, 'outbox-seal.key');
      createSealKeyFileOnce(path);
      const text = readFileSync(path, 'utf8');
      expect(text).toMatch(/^[0-9a-f]{64}\n$/);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      createSealKeyFileOnce(path);
      expect(readFileSync(path, 'utf8')).toBe(text);
      // Another process with the same file seals alike; the key is HMAC(file key, label).
      const entryPlace: SealPlace = { kind: 'admin', event_id: 'evt_1' };
      const seal = await fileOutboxSealer(path).seal(entryPlace, { a: 1 });
      expect(await HmacOutboxSealer.withKey(deriveLocalKey(Buffer.from(text.trim(), 'hex'))).check(entryPlace, { a: 1 }, seal)).toEqual({ ok: true });
      expect(await fileOutboxSealer(path).check(entryPlace, { a: 1 }, seal)).toEqual({ ok: true });
      writeFileSync(join(dir, 'short.key'), 'abcd\n');
      await expect(fileOutboxSealer(join(dir, 'short.key')).seal(entryPlace, {})).rejects.toThrow(/ACKD_OUTBOX_SEAL_KEY: .*short.key must hold 32 bytes/);
      await expect(fileOutboxSealer(join(dir, 'missing.key')).seal(entryPlace, {})).rejects.toThrow(/ACKD_OUTBOX_SEAL_KEY: cannot read .*missing.key \(ENOENT\)/);
      await expect(outboxSealerFrom({ outboxSealKey: undefined, region: 'us-east-1' }).seal(entryPlace, {})).rejects.toMatchObject({ code: 'ERR_SIGNER_UNAVAILABLE' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
