import { describe, expect, it } from 'vitest';
import { loadCognitoConfig, loadMailConfig } from '../../lambdas/consent-api/config.ts';

const AWS = {
  ACKD_COGNITO_ISSUER: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC',
  ACKD_COGNITO_CLIENT_ID: '3n4b5urk1ft4fl3mg5e62d9ado',
};

describe('consent configuration', () => {
  it('derives the JWKS URL from the issuer', () => {
    const c = loadCognitoConfig(AWS, false);
    expect(c.jwksUrl).toBe('https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC/.well-known/jwks.json');
    expect(c.allowedOrigins).toEqual([]);
  });

  it('refuses insecure or missing values outside local mode, naming the variable', () => {
    expect(() => loadCognitoConfig({ ...AWS, ACKD_COGNITO_ISSUER: 'http://127.0.0.1:9229/local_x' }, false)).toThrow(/ACKD_COGNITO_ISSUER: must be an https URL/);
    expect(() => loadCognitoConfig({ ACKD_COGNITO_ISSUER: AWS.ACKD_COGNITO_ISSUER }, false)).toThrow(/ACKD_COGNITO_CLIENT_ID: is required/);
    expect(() => loadCognitoConfig({ ...AWS, ACKD_COGNITO_ENDPOINT: 'http://127.0.0.1:9229' }, false)).toThrow(/ACKD_COGNITO_ENDPOINT: is for local mode only/);
    expect(() => loadCognitoConfig({ ...AWS, ACKD_CONSENT_ALLOWED_ORIGINS: 'http://evil.example' }, false)).toThrow(/ACKD_CONSENT_ALLOWED_ORIGINS/);
    expect(() => loadCognitoConfig({ ...AWS, ACKD_CONSENT_ALLOWED_ORIGINS: 'https://ui.example/path' }, false)).toThrow(/ACKD_CONSENT_ALLOWED_ORIGINS/);
    expect(() => loadMailConfig({}, false)).toThrow(/ACKD_SENDER: is required/);
    expect(() => loadMailConfig({ ACKD_SENDER: 'ackd@example.com' }, false)).toThrow(/ACKD_APPROVERS/);
    expect(() => loadMailConfig({ ACKD_SENDER: 'nope', ACKD_APPROVERS: 'a@example.com' }, false)).toThrow(/ACKD_SENDER/);
    expect(() => loadMailConfig({ ACKD_SENDER: 'a@example.com', ACKD_APPROVERS: 'a@example.com', ACKD_SES_ENDPOINT: 'http://127.0.0.1:1' }, false)).toThrow(/ACKD_SES_ENDPOINT: is for local mode only/);
  });

  it('accepts cognito-local and the local mail server in local mode; mail is optional locally', () => {
    const c = loadCognitoConfig({ ACKD_COGNITO_ISSUER: 'http://127.0.0.1:9229/local_x', ACKD_COGNITO_CLIENT_ID: 'abc', ACKD_COGNITO_ENDPOINT: 'http://127.0.0.1:9229' }, true);
    expect(c).toMatchObject({ issuer: 'http://127.0.0.1:9229/local_x', endpoint: 'http://127.0.0.1:9229' });
    expect(loadMailConfig({}, true)).toBeUndefined();
    const m = loadMailConfig({ ACKD_SENDER: 'ackd <ackd@example.com>', ACKD_APPROVERS: 'a@example.com', ACKD_APPROVER_ROUTES: '{"bot":["b@example.com"]}' }, false);
    expect(m).toMatchObject({ sender: 'ackd <ackd@example.com>', routing: { defaultApprovers: ['a@example.com'], routes: { bot: ['b@example.com'] } } });
  });
});
