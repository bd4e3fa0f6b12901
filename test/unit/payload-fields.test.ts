import { describe, expect, it } from 'vitest';
import { fieldPath, fold, FOLD_CHARS, groupedHex, moreCharacters, payloadFields, shownText, valueText } from '../../lambdas/core/payload-fields.ts';
import { groupedHex as contractGroupedHex, parsePayload, payloadSha256 } from '../../lambdas/core/payload.ts';
import { digestText, payloadRows, SHOW_LESS, showAllLabel, STALE_VIEW_TEXT } from '../../consent-ui/src/payload-view.ts';
import { payloadSha256Hex } from '../../consent-ui/src/view-hash.ts';
import { refusalText } from '../../consent-ui/src/votes.ts';

const rows = (p: unknown) => payloadFields(parsePayload(p)).map((f) => [f.path, f.text]);

describe('payload fields: one row per value, path → value', () => {
  it('nested keys become paths, arrays indices, in the object’s order', () => {
    const p = { deploy: { env: 'prod', targets: [{ region: 'eu-west-1', replicas: 3 }, { region: 'us-east-1', replicas: 2 }] }, dry_run: false, note: null };
    expect(rows(p)).toEqual([
      ['deploy.env', '"prod"'],
      ['deploy.targets[0].region', '"eu-west-1"'],
      ['deploy.targets[0].replicas', '3'],
      ['deploy.targets[1].region', '"us-east-1"'],
      ['deploy.targets[1].replicas', '2'],
      ['dry_run', 'false'],
      ['note', 'null'],
    ]);
  });

  it('the string "1" and the number 1 (and "true"/true, "null"/null) never read the same', () => {
    const r = Object.fromEntries(rows({ s: '1', n: 1, bs: 'true', b: true, ns: 'null', z: null, e: '' }));
    expect(r).toEqual({ s: '"1"', n: '1', bs: '"true"', b: 'true', ns: '"null"', z: 'null', e: '""' });
    expect(payloadFields(parsePayload({ s: '1', n: 1 })).map((f) => f.kind)).toEqual(['string', 'number']);
  });

  it('keys that are not identifiers are bracketed JSON strings, so {"a.b":1} and {"a":{"b":1}} differ', () => {
    expect(rows({ 'a.b': 1 })).toEqual([['["a.b"]', '1']]);
    expect(rows({ a: { b: 1 } })).toEqual([['a.b', '1']]);
    expect(rows({ headers: { 'content-type': 'json', '': 'empty', '0': 'zero' } })).toEqual([
      ['headers["0"]', '"zero"'],
      ['headers["content-type"]', '"json"'],
      ['headers[""]', '"empty"'],
    ]);
    expect(rows({ list: ['x'] })).toEqual([['list[0]', '"x"']]);
    expect(fieldPath('', 'a"b')).toBe('["a\\"b"]');
  });

  it('empty objects and arrays are rows of their own; an empty payload has none', () => {
    expect(rows({ a: {}, b: [], c: [[]] })).toEqual([
      ['a', '{}'],
      ['b', '[]'],
      ['c[0]', '[]'],
    ]);
    expect(rows({})).toEqual([]);
  });

  it('invisible, direction-changing and control characters are shown as [U+XXXX], in values and keys; line feeds and tabs stay', () => {
    expect(shownText('a\u202eb\u200bc\u0000d\u001b[31me\r\nf\tg\u2028h\u0085')).toBe('a[U+202E]b[U+200B]c[U+0000]d[U+001B][31me[U+000D]\nf\tg[U+2028]h[U+0085]');
    expect(rows({ 'ke\u202ey': 'v\u2066al' })).toEqual([['["ke[U+202E]y"]', '"v[U+2066]al"']]);
    // Markup is only text here; the page and the mail put it in as text / escaped.
    expect(rows({ html: '<script>x</script>' })).toEqual([['html', '"<script>x</script>"']]);
  });

  it('numbers as JSON (what the canonical form hashes)', () => {
    expect(valueText(1e21).text).toBe('1e+21');
    expect(valueText(-0.5).text).toBe('-0.5');
    expect(valueText(0).text).toBe('0');
  });

  it('a deep payload (depth 10) flattens to one long path', () => {
    let p: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 8; i++) p = { n: p };
    expect(rows(p)).toEqual([[`${'n.'.repeat(8)}leaf`, '"x"']]);
  });
});

describe('folding long values', () => {
  it('a short one-line value is not folded', () => {
    expect(fold('"short"')).toEqual({ folded: false, preview: '"short"', hidden: 0, lines: 1 });
    const exact = 'x'.repeat(FOLD_CHARS);
    expect(fold(exact).folded).toBe(false);
  });

  it('over FOLD_CHARS characters: the first FOLD_CHARS shown, the rest counted', () => {
    const f = fold('y'.repeat(FOLD_CHARS + 34));
    expect(f).toEqual({ folded: true, preview: 'y'.repeat(FOLD_CHARS), hidden: 34, lines: 1 });
  });

  it('multi-line: the first line shown, whatever its length', () => {
    const f = fold('"ALTER TABLE a;\nDROP TABLE b;"');
    expect(f).toEqual({ folded: true, preview: '"ALTER TABLE a;', hidden: 15, lines: 2 });
  });

  it('counts characters, never cuts an emoji in half', () => {
    const f = fold('🦀'.repeat(FOLD_CHARS + 1));
    expect(f.preview).toBe('🦀'.repeat(FOLD_CHARS));
    expect(f.hidden).toBe(1);
    expect(moreCharacters(1)).toBe('1 more character');
    expect(moreCharacters(1234)).toBe('1,234 more characters');
  });

  it('the page rows carry their fold, and the toggle says how much is hidden', () => {
    const [long, short] = payloadRows({ sql: `SELECT 1;\n${'-- x\n'.repeat(3)}`, n: 1 });
    expect(long!.fold.folded).toBe(true);
    expect(long!.fold.preview).toBe('"SELECT 1;');
    expect(showAllLabel(long!.fold)).toBe(`Show all (5 lines, ${long!.fold.hidden} more characters)`);
    expect(showAllLabel(fold('z'.repeat(FOLD_CHARS + 1)))).toBe('Show all (1 more character)');
    expect(short!.fold.folded).toBe(false);
    expect(SHOW_LESS).toBe('Show less');
  });
});

describe('the digest, for a person', () => {
  it('in groups of 4, the same as the contract’s groupedHex', () => {
    const hex = payloadSha256(parsePayload({ a: 1 }));
    expect(groupedHex(hex)).toBe(contractGroupedHex(hex));
    expect(digestText(hex).split(' ')).toHaveLength(16);
    expect(digestText(hex).replace(/ /g, '')).toBe(hex);
  });

  it('the page computes the same payload SHA-256 as the server (WebCrypto over RFC 8785)', async () => {
    const p = { b: [1, 2.5, 'x'], a: { 'ü': '🦀', z: null }, big: 1e21 };
    expect(await payloadSha256Hex(p)).toBe(payloadSha256(parsePayload(p)));
  });

  it('a refused stale decision has its own words on the page', () => {
    expect(refusalText('ERR_STALE_VIEW', 'whatever')).toBe(STALE_VIEW_TEXT);
  });
});
