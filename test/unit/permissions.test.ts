import { describe, expect, it } from 'vitest';
import { renderConsentEmail } from '../../lambdas/adapters/ses/template.ts';
import { PERMISSION_PATTERN, permissionProblem } from '../../lambdas/core/permission.ts';
import { parsePermissionPattern } from '../../lambdas/core/policy.ts';
import { permissionSchema, requestAuthorizationInput } from '../../lambdas/mcp/schemas.ts';
import { visible } from '../../lambdas/core/visible.ts';
import { pendingRecord } from '../helpers/consent-fixtures.ts';

const RULE = 'a permission may use only A-Z a-z 0-9 and . _ : / * + = @ # ~ -';
const ALLOWED = new Set([...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/*+=@#~-']);

/** Characters a security review found accepted in a permission. */
const HOSTILE: [string, string][] = [
  ['\u00a0', 'NBSP'],
  ['\u2003', 'em space'],
  ['\u3000', 'ideographic space'],
  ['\u200b', 'zero-width space'],
  ['\u200c', 'zero-width non-joiner'],
  ['\u200d', 'zero-width joiner'],
  ['\u2060', 'word joiner'],
  ['\ufeff', 'BOM'],
  ['\u00ad', 'soft hyphen'],
  ['\u202e', 'RLO'],
  ['\u202a', 'LRE'],
  ['\u200f', 'RLM'],
  ['\u2066', 'LRI'],
  ['\u2069', 'PDI'],
  ['\u061c', 'Arabic letter mark'],
  ['\u0430', 'Cyrillic a'],
  ['\u03bf', 'Greek omicron'],
  ['\u0301', 'combining acute accent'],
  ['\uff1a', 'fullwidth colon'],
  ['\u2215', 'division slash'],
  ['\u{e0041}', 'tag latin capital A'],
  ['\u3164', 'Hangul filler'],
  ['\t', 'tab'],
  ['\n', 'line feed'],
  [' ', 'space'],
  [',', 'comma'],
  ['"', 'quote'],
  ['<', 'less-than'],
  ['%', 'percent'],
  ['\\', 'backslash'],
];

function hex(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

describe('permission characters', () => {
  it.each(HOSTILE)('refuses %j (%s), naming its code point', (c) => {
    for (const p of [`d${c}b:write`, `${c}db:write`, `db:write${c}`]) {
      const r = permissionSchema.safeParse(p);
      expect(r.success).toBe(false);
      const shown = c.codePointAt(0)! > 0x20 && c.codePointAt(0)! < 0x7f ? `"${c}" (${hex(c)})` : hex(c);
      expect(r.error!.issues.map((i) => i.message)).toEqual([`contains ${shown}, which is not allowed; ${RULE}`]);
    }
  });

  it('the homoglyph "dаtabase:write" (Cyrillic а) is refused at the first foreign character', () => {
    const r = permissionSchema.safeParse('d\u0430t\u0430base:write');
    expect(r.error!.issues[0]!.message).toBe(`contains U+0430, which is not allowed; ${RULE}`);
  });

  it('accepts exactly A-Z a-z 0-9 . _ : / * + = @ # ~ - (every code point checked)', () => {
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      if (PERMISSION_PATTERN.test(`a${c}`) !== ALLOWED.has(c)) throw new Error(`${hex(c)} is ${ALLOWED.has(c) ? 'refused' : 'accepted'}`);
    }
    for (let cp = 0; cp < 0x80; cp++) {
      const c = String.fromCharCode(cp);
      expect(permissionSchema.safeParse(`x${c}`).success, hex(c)).toBe(ALLOWED.has(c));
    }
    expect(PERMISSION_PATTERN.test('a\ud800')).toBe(false);
  });

  it('real permission names pass and are NFC', () => {
    for (const p of ['db:write', 's3:GetObject', 'repo/acme:push', 'arn:aws:s3:::bucket/*', 'team=ops@corp#1', 'a.b_c-d+e~f', '*']) {
      expect(permissionSchema.safeParse(p).success, p).toBe(true);
      expect(p.normalize('NFC')).toBe(p);
    }
    expect(permissionSchema.safeParse('p'.repeat(128)).success).toBe(true);
    expect(permissionSchema.safeParse('p'.repeat(129)).error!.issues[0]!.message).toBe('must be at most 128 characters');
  });

  it('the core\'s check (policies, the CLI) and the MCP schema say the same of every input: one rule', () => {
    const inputs: unknown[] = ['db:write', '*', '', 'p'.repeat(128), 'p'.repeat(129), 'd\u0430ta', 'a b', 'x,y', 42, null, ['db:write'], ...HOSTILE.map(([c]) => `db${c}`)];
    for (const v of inputs) {
      const r = permissionSchema.safeParse(v);
      expect(permissionProblem(v), JSON.stringify(v)).toBe(r.success ? undefined : r.error.issues[0]!.message);
    }
    expect(() => parsePermissionPattern('db:wr\u0456te')).toThrow(`permission: contains U+0456, which is not allowed; ${RULE}`);
    expect(parsePermissionPattern('db:*')).toBe('db:*');
  });
});

describe('free text (action, justification)', () => {
  const { action, justification } = requestAuthorizationInput.shape;

  it('is any Unicode text, including invisible characters (they are shown visibly to humans)', () => {
    for (const [c] of HOSTILE.filter(([c]) => c !== '\t' && c !== '\n' && c.trim() !== '')) {
      expect(action.safeParse(`deploy ${c} now`).success, hex(c)).toBe(true);
    }
    expect(justification.safeParse('line 1\nline 2\ttabbed, مرحبا 漢字 🦀 👩\u200d💻').success).toBe(true);
  });

  it('refuses control characters, U+2028/2029 and unpaired surrogates, naming the code point', () => {
    expect(action.safeParse('rm\u0007x').error!.issues[0]!.message).toBe('contains U+0007, a control character or unpaired surrogate, which is not allowed');
    expect(action.safeParse('a\u2028b').error!.issues[0]!.message).toContain('U+2028');
    expect(action.safeParse('a\u0085b').error!.issues[0]!.message).toContain('U+0085');
    expect(justification.safeParse('x\udc00y').error!.issues[0]!.message).toContain('U+DC00');
    expect(justification.safeParse('\ud83e\udd80').success).toBe(true); // a pair is text
  });
});

describe('invisible and direction-changing characters are shown, not obeyed', () => {
  const MUST_SHOW = ['\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069', '\u200b', '\u200c', '\u200d', '\u2060', '\u2061', '\u2062', '\u2063', '\u2064', '\ufeff', '\u00ad', '\u180e', '\u3164', '\ufff9', '\ufffa', '\ufffb', '\u{e0001}', '\u{e0041}', '\u{e007f}', '\u{e0100}'];

  it.each(MUST_SHOW.map((c) => [hex(c), c]))('%s is shown (one definition for the email, the consent page and the CLI)', (code, c) => {
    expect(visible(`a${c}b`)).toBe(`a[${code}]b`);
    const mail = renderConsentEmail(pendingRecord({ action: `a${c}b` }), 'https://consent.example.com/');
    expect(mail.text).toContain(`a[${code}]b`);
  });

  it('U+061C (Arabic letter mark) is visible in every part of the consent email', () => {
    const r = pendingRecord({ action: 'pay \u061c100', justification: 'refund\u061c', permissions: ['payments:refund'] });
    const mail = renderConsentEmail(r, `https://consent.example.com/?request_id=${r.request_id}`);
    for (const part of [mail.subject, mail.text, mail.html]) expect(part).not.toContain('\u061c');
    expect(mail.subject).toContain('pay [U+061C]100');
    expect(mail.text).toContain('pay [U+061C]100');
    expect(mail.text).toContain('refund[U+061C]');
    expect(mail.html).toContain('pay [U+061C]100');
    expect(mail.html).toContain('refund[U+061C]');
  });

  it('every bidi control and default-ignorable code point is marked, and nothing visible', () => {
    const mustShow = /[\p{Bidi_Control}\p{Default_Ignorable_Code_Point}\ufff9-\ufffb]/u;
    for (let cp = 0; cp <= 0x10ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      const email = visible(c);
      if ((email !== c) !== mustShow.test(c)) throw new Error(`${hex(c)} is ${email === c ? 'not shown' : 'shown needlessly'}`);
    }
    expect(visible('Ü🦀漢字 مرحبا')).toBe('Ü🦀漢字 مرحبا');
  });
});
