import { describe, expect, it } from 'vitest';
import { MemoryRequestStore } from '../../lambdas/adapters/memory/store.ts';
import { describeQuarantine, terminalSafeJson } from '../../lambdas/cli/audit.ts';
import { auditEvent, type PendingEvent } from '../../lambdas/core/audit/event.ts';
import { AuditService } from '../../lambdas/core/audit/service.ts';
import { QUARANTINE_COUNT_MAX, QUARANTINE_ENTRY_MAX_BYTES, quarantineQuery, quarantineRecord, type QuarantineRecord } from '../../lambdas/core/audit/quarantine.ts';
import type { RequestId } from '../../lambdas/core/ids.ts';
import type { Logger } from '../../lambdas/core/ports.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';
import { ManualClock } from '../helpers/clock.ts';

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const T0 = '2026-03-01T10:00:00.000Z';

describe('the in-memory store keeps and lists quarantine records as the table does', () => {
  it("what its sequencer refuses is listed: a request's forged entry and a forged operator change, with reason, source and entry", async () => {
    const clock = new ManualClock(T0);
    const mem = new MemoryRequestStore(clock, { autoSequence: false });
    const record = pendingRecord({ requested_at: T0, expires_at: '2026-03-01T10:30:00.000Z' });
    const requestId = record.request_id as RequestId;
    await mem.create(record, 0, auditEvent('requested', { type: 'agent', id: record.agent_id }, clock.now()));
    clock.advance(1000);
    const forged = { event: auditEvent('approved', { type: 'operator', id: 'mallory' }, clock.now()), row: 'approve', params: {}, seal: `v1.${'A'.repeat(43)}` };
    mem.writeRawOutboxEntry(requestId, forged);
    clock.advance(1000);
    const change: PendingEvent = auditEvent('tool_call', { type: 'agent', id: 'demo-agent' }, clock.now());
    mem.writeRawAdminItem('evt_forged', { event: change, change: { call: {} } });
    expect(await mem.sequencer.run({ nudged: true })).toMatchObject({ sequenced: 1, refused: 2 });

    const page = await mem.quarantineRecords({ since: '2026-03-01', order: 'oldest', limit: 10 });
    expect(page).toMatchObject({ more: 0, more_exact: true });
    // (both refused in one run, at the same instant: among equal times the order is the records' digests')
    expect(page.records.map((r) => [r.source, r.reason]).sort()).toEqual([
      [`audit#admin#evt_forged`, 'missing'],
      [`req#${requestId}`, 'mismatch'],
    ]);
    expect(page.records.find((r) => r.source === `req#${requestId}`)).toMatchObject({ entry: forged, quarantined_at: '2026-03-01T10:00:02.000Z', message: expect.stringContaining('the seal does not match') as string });
    // …and through the audit service, with its defaults: the 7 days before now, newest first, 100.
    const audit = new AuditService({ log: mem, clock, logger: quiet, retentionDays: 30 });
    const listed = await audit.quarantine({});
    expect(listed).toMatchObject({ since: '2026-02-22T10:00:02.000Z', order: 'newest', limit: 100, more: 0 });
    expect(listed.records.map((r) => r.source).sort()).toEqual(['audit#admin#evt_forged', `req#${requestId}`]);
    clock.advance(8 * 86_400_000);
    expect((await audit.quarantine({})).records).toEqual([]);
    expect((await audit.quarantine({ since: '2026-03-01' })).records).toHaveLength(2);
  });

  it('counts beyond the limit up to QUARANTINE_COUNT_MAX, then says "at least"', async () => {
    const mem = new MemoryRequestStore(new ManualClock(T0), { autoSequence: false });
    const at = new Date(T0);
    for (let n = 0; n < QUARANTINE_COUNT_MAX + 2; n++) mem.quarantined.push({ ...quarantineRecord('audit#admin#x', { n }, 'missing', 'm', at) });
    expect(await mem.quarantineRecords({ since: T0, order: 'newest', limit: 1 })).toMatchObject({ more: QUARANTINE_COUNT_MAX, more_exact: false });
    expect(await mem.quarantineRecords({ since: T0, order: 'newest', limit: 2 })).toMatchObject({ more: QUARANTINE_COUNT_MAX, more_exact: true });
  });
});

describe('quarantineQuery (the listing defaults)', () => {
  const now = new Date('2026-11-30T12:00:00.000Z');
  it('looks back 7 days from until, else from now; newest first; 100', () => {
    expect(quarantineQuery({}, {}, now)).toEqual({ since: '2026-11-23T12:00:00.000Z', order: 'newest', limit: 100 });
    expect(quarantineQuery({ until: '2026-11-10T00:00:00.000Z' }, { limit: 5, order: 'oldest' }, now)).toEqual({ since: '2026-11-03T00:00:00.000Z', until: '2026-11-10T00:00:00.000Z', order: 'oldest', limit: 5 });
    expect(quarantineQuery({ since: '2026-01-01T00:00:00.000Z' }, {}, now)).toEqual({ since: '2026-01-01T00:00:00.000Z', order: 'newest', limit: 100 });
  });
});

describe('describeQuarantine (the human form)', () => {
  const at = new Date('2026-11-30T12:00:00.000Z');
  const page = (records: QuarantineRecord[], more = 0, more_exact = true) => ({ since: '2026-11-23T12:00:00.000Z', order: 'newest' as const, limit: 100, records, more, more_exact });

  it('one line per record, whatever the table holds: escapes, line breaks and invisible characters shown, long fields cut', () => {
    const hostile = `\u001b[2J\u001b]8;;http://evil\u0007click\u001b]8;;\u0007\r\nerror: nothing refused\u200b`;
    const records = [
      { ...quarantineRecord('audit#admin#evt_1', { event: { event_id: 'evt_1', type: 'tool_call' } }, 'mismatch', hostile, at) },
      { ...quarantineRecord(`req#${'r'.repeat(500)}`, { event: { event_id: 42, type: { nested: true } } }, 'missing', 'x'.repeat(1000), at) },
      { ...quarantineRecord('audit#admin#evt_huge', { pad: 'y'.repeat(QUARANTINE_ENTRY_MAX_BYTES) }, 'mismatch', 'huge', at) },
      { ...quarantineRecord('audit#admin#evt_str', 'hello', 'missing', 'not a map', at) },
      // As a table writer may leave one: a reason that is no RefusalReason, with a line break.
      { ...quarantineRecord('audit#admin#evt_odd', null, 'missing', 'm', at), reason: 'odd\nreason' },
    ];
    const text = describeQuarantine(page(records, 7, false));
    const lines = text.split('\n');
    expect(lines).toHaveLength(1 + records.length + 1);
    expect(lines[0]).toBe('5 refused entries quarantined from 2026-11-23T12:00:00.000Z to now, newest first:');
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200b]/);
    expect(lines[1]).toBe(
      '2026-11-30T12:00:00.000Z  mismatch   audit#admin#evt_1  tool_call evt_1  ' +
        `${records[0]!.entry_bytes} B  [U+001B][2J[U+001B]]8;;http://evil[U+0007]click[U+001B]]8;;[U+0007][U+000D] error: nothing refused[U+200B]`,
    );
    expect(lines[2]).toContain(`  req#${'r'.repeat(76)}…  {"nested":true} 42  `);
    expect(lines[2]).toContain(`${'x'.repeat(120)}…`);
    expect(lines[2]).not.toContain('x'.repeat(121));
    expect(lines[3]).toMatch(/audit#admin#evt_huge {2}\(entry kept as its digest only\) {2}\d{6} B {2}huge$/);
    expect(lines[4]).toContain('audit#admin#evt_str  (no event)  7 B  not a map');
    expect(lines[5]).toContain('odd reason');
    expect(lines[6]).toBe('… and at least 7 more in this window (raise --limit, up to 1000, or narrow --since/--until; --json gives every field)');
  });

  it('an empty window says so, with the window', () => {
    expect(describeQuarantine({ ...page([]), until: '2026-11-24T00:00:00.000Z' })).toBe('no refused entries quarantined from 2026-11-23T12:00:00.000Z until 2026-11-24T00:00:00.000Z');
  });
});

describe('terminalSafeJson (the --json form)', () => {
  it('the same value, with C1 controls, DEL, line separators and invisible characters (also beyond the BMP) escaped', () => {
    const value = { s: 'a\u009b31mb\u007f\u2028\u202e\u200b\u{e0041}\u001b[2Jc', n: 1, nested: ['\u0085'] };
    const text = terminalSafeJson(value);
    expect(JSON.parse(text)).toEqual(value);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202e\u200b]|\u{e0041}/u);
    expect(text).toContain('\\u009b31mb\\u007f\\u2028\\u202e\\u200b\\udb40\\udc41\\u001b[2Jc');
  });
});
