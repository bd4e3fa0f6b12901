/** The daily archive's pure part (lambdas/core/archive.ts): which day, which window, which key. */
import { describe, expect, it } from 'vitest';
import { archiveDay, archiveDayOf } from '../../lambdas/core/archive.ts';

describe('archiveDay', () => {
  it('is the whole UTC day, written to audit/YYYY/MM/DD.jsonl', () => {
    expect(archiveDay('2026-03-01')).toEqual({
      day: '2026-03-01',
      window: { since: '2026-03-01T00:00:00.000Z', until: '2026-03-02T00:00:00.000Z' },
      key: 'audit/2026/03/01.jsonl',
    });
    // Across a month, a year and a leap day.
    expect(archiveDay('2028-02-29').window.until).toBe('2028-03-01T00:00:00.000Z');
    expect(archiveDay('2026-12-31').window.until).toBe('2027-01-01T00:00:00.000Z');
  });

  it.each(['2026-02-30', '2026-13-01', '26-01-01', '2026-1-01', '2026-01-01T00:00:00Z', ''])('refuses %j naming the field', (day) => {
    expect(() => archiveDay(day)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_INPUT', field: 'day' }));
  });
});

describe('archiveDayOf (the Lambda event)', () => {
  const now = new Date('2026-11-30T00:15:07Z');

  it('a scheduled event archives the UTC day before its time', () => {
    expect(archiveDayOf({ 'detail-type': 'Scheduled Event', time: '2026-11-30T00:15:00Z' }, now).key).toBe('audit/2026/11/29.jsonl');
  });

  it('without a time, the day before now', () => {
    expect(archiveDayOf({}, now).day).toBe('2026-11-29');
    expect(archiveDayOf(undefined, now).day).toBe('2026-11-29');
  });

  it('an explicit past day is archived by hand', () => {
    expect(archiveDayOf({ day: '2026-10-01' }, now).window).toEqual({ since: '2026-10-01T00:00:00.000Z', until: '2026-10-02T00:00:00.000Z' });
  });

  it('refuses a day that has not ended (its archive could never be completed: archives are written once)', () => {
    expect(() => archiveDayOf({ day: '2026-11-30' }, now)).toThrow(/has not ended yet/);
    expect(() => archiveDayOf({ day: '2027-01-01' }, now)).toThrow(/has not ended yet/);
  });

  it('refuses a malformed day or time', () => {
    expect(() => archiveDayOf({ day: 20261101 }, now)).toThrow(expect.objectContaining({ field: 'day' }));
    expect(() => archiveDayOf({ time: 'yesterday' }, now)).toThrow(expect.objectContaining({ field: 'time' }));
  });
});
