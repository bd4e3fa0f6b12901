import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import {
  CreateGroupCommand,
  CreateUserPoolClientCommand,
  CreateUserPoolCommand,
  DescribeUserPoolClientCommand,
  DescribeUserPoolCommand,
  UpdateUserPoolClientCommand,
  type CognitoIdentityProviderClient,
} from '@aws-sdk/client-cognito-identity-provider';
import { ApproverAdmin, cognitoClient } from '../adapters/cognito/admin.ts';
import { APPROVERS_GROUP } from '../adapters/cognito/verifier.ts';
import { attachHostedLogin } from './hosted-login.ts';

export interface LocalCognito {
  /** cognito-local's base URL: the Cognito API endpoint and the hosted-login (oauth2) domain. */
  readonly url: string;
  /** `${url}/${userPoolId}` — what the tokens carry as `iss`. */
  readonly issuer: string;
  readonly jwksUrl: string;
  readonly userPoolId: string;
  readonly clientId: string;
  /** Base for `/oauth2/authorize` and `/oauth2/token` (same as url locally; the managed-login domain on AWS). */
  readonly authorizeBase: string;
  readonly approverUsername: string;
  readonly approverPassword: string;
  /** Registers the consent UI's callback URL(s) on the app client (its port can change per run). */
  setCallbackUrls(urls: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

export interface LocalCognitoOptions {
  /** Data directory, e.g. `.ackd/cognito`. The pool's ids and the approver live here across runs. */
  readonly dir: string;
  readonly port?: number;
  /** Redirect URIs of the consent UI (may be set later with setCallbackUrls). */
  readonly callbackUrls?: readonly string[];
  readonly approverEmail?: string;
  /** 'error' by default; 'debug' to see every Cognito call. */
  readonly logLevel?: string;
}

interface Persisted {
  userPoolId: string;
  clientId: string;
  approverUsername: string;
  approverPassword: string;
}

const requireFromCognito = createRequire(createRequire(import.meta.url).resolve('cognito-local/package.json'));
// cognito-local is CommonJS and has no exports map: its building blocks are loaded directly so that
// its data directory and port are ours (its default server uses ./.cognito and a fixed port).
/* eslint-disable @typescript-eslint/no-explicit-any */
function loadCognitoLocal() {
  // cognito-local pulls in the AWS SDK v2, which prints an end-of-support notice on load.
  process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE ??= '1';
  return {
    server: requireFromCognito('./lib/server/server.js') as any,
    router: requireFromCognito('./lib/server/Router.js') as any,
    config: requireFromCognito('./lib/server/config.js') as any,
    services: requireFromCognito('./lib/services/index.js') as any,
    cognitoService: requireFromCognito('./lib/services/cognitoService.js') as any,
    crypto: requireFromCognito('./lib/services/crypto.js') as any,
    stormDb: requireFromCognito('./lib/services/dataStore/stormDb.js') as any,
    consoleSender: requireFromCognito('./lib/services/messageDelivery/consoleMessageSender.js') as any,
    messageDelivery: requireFromCognito('./lib/services/messageDelivery/messageDelivery.js') as any,
    otp: requireFromCognito('./lib/services/otp.js') as any,
    tokenGenerator: requireFromCognito('./lib/services/tokenGenerator.js') as any,
    oauth2Routes: requireFromCognito('./lib/oauth2/routes.js') as any,
    authorizationCodeStore: requireFromCognito('./lib/oauth2/authorizationCodeStore.js') as any,
    userPoolService: requireFromCognito('./lib/services/userPoolService.js') as any,
    pino: requireFromCognito('pino') as any,
  };
}

/**
 * Starts cognito-local in this process on 127.0.0.1 (port 0 = ephemeral) with its data under
 * `dir`, and makes sure the ackd user pool, the consent UI's app client (public, code + PKCE),
 * the `approvers` group and one approver exist. Ids and the approver's generated password are
 * kept in `dir/ackd.json` (local only; `.ackd/` is not committed).
 */
export async function startLocalCognito(opts: LocalCognitoOptions): Promise<LocalCognito> {
  const cl = loadCognitoLocal();
  const dir = resolve(opts.dir);
  const dataDir = join(dir, 'db');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const logger = cl.pino({ level: opts.logLevel ?? 'error', base: { component: 'cognito-local' } });
  const ctx = { logger };
  const tokenConfig = { IssuerDomain: 'http://127.0.0.1' };
  const config = {
    ...cl.config.DefaultConfig,
    UserPoolDefaults: { UsernameAttributes: ['email'] },
    TokenConfig: tokenConfig,
    ServerConfig: { hostname: '127.0.0.1', port: opts.port ?? 0, https: false },
  };
  const clock = new cl.services.DateClock();
  const storeFactory = new cl.stormDb.StormDBDataStoreFactory(dataDir);
  const cognito = await new cl.cognitoService.CognitoServiceFactoryImpl(
    dataDir,
    storeFactory,
    new cl.userPoolService.UserPoolServiceFactoryImpl(clock, storeFactory),
  ).create(ctx, config.UserPoolDefaults);
  // No Lambda triggers are configured, so the Lambda service is never called.
  const triggers = new cl.services.TriggersService(clock, cognito, new cl.services.LambdaService({}, undefined), new cl.crypto.CryptoService(config.KMSConfig));
  const services = {
    clock,
    cognito,
    config,
    messages: new cl.services.MessagesService(triggers, new cl.messageDelivery.MessageDeliveryService(new cl.consoleSender.ConsoleMessageSender())),
    otp: cl.otp.otp,
    tokenGenerator: new cl.tokenGenerator.JwtTokenGenerator(clock, triggers, tokenConfig),
    triggers,
  };
  // The server without cognito-local's OAuth routes (no services passed), so that ackd's sign-in
  // page (hosted-login.ts) answers /oauth2/authorize; cognito-local's /oauth2/token is mounted
  // after it and redeems the codes from the same store.
  const created = cl.server.createServer(cl.router.Router(services), logger, config.ServerConfig);
  const codeStore = new cl.authorizationCodeStore.AuthorizationCodeStore();
  attachHostedLogin(created.application, services, codeStore);
  cl.oauth2Routes.attachOAuth2Routes(created.application, services, codeStore);
  const server = (await created.start()) as Server;
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  tokenConfig.IssuerDomain = url; // the generator reads it per token, so issuers match the real port

  const stop = () =>
    new Promise<void>((res, rej) => {
      server.closeAllConnections?.();
      server.close((err) => (err ? rej(err) : res()));
    });

  try {
    const client = cognitoClient({ region: 'us-east-1', endpoint: url });
    const ids = await ensureSetup(client, join(dir, 'ackd.json'), opts);
    const issuer = `${url}/${ids.userPoolId}`;
    return {
      url,
      issuer,
      jwksUrl: `${issuer}/.well-known/jwks.json`,
      userPoolId: ids.userPoolId,
      clientId: ids.clientId,
      authorizeBase: url,
      approverUsername: ids.approverUsername,
      approverPassword: ids.approverPassword,
      setCallbackUrls: (urls) => setCallbackUrls(client, ids.userPoolId, ids.clientId, urls),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function ensureSetup(client: CognitoIdentityProviderClient, file: string, opts: LocalCognitoOptions): Promise<Persisted> {
  let saved: Persisted | undefined;
  if (existsSync(file)) {
    saved = JSON.parse(readFileSync(file, 'utf8')) as Persisted;
    const poolExists = await client.send(new DescribeUserPoolCommand({ UserPoolId: saved.userPoolId })).then(
      () => true,
      () => false,
    );
    if (!poolExists) saved = undefined;
  }
  if (!saved) {
    const pool = await client.send(
      new CreateUserPoolCommand({
        PoolName: 'ackd-local',
        UsernameAttributes: ['email'],
        AutoVerifiedAttributes: ['email'],
      }),
    );
    const userPoolId = pool.UserPool!.Id!;
    const appClient = await client.send(
      new CreateUserPoolClientCommand({
        UserPoolId: userPoolId,
        ClientName: 'ackd-consent-ui',
        GenerateSecret: false,
        AllowedOAuthFlows: ['code'],
        AllowedOAuthFlowsUserPoolClient: true,
        AllowedOAuthScopes: ['openid', 'email', 'profile'],
        SupportedIdentityProviders: ['COGNITO'],
        CallbackURLs: [...(opts.callbackUrls ?? ['http://127.0.0.1/'])],
        IdTokenValidity: 60,
        AccessTokenValidity: 60,
        TokenValidityUnits: { IdToken: 'minutes', AccessToken: 'minutes', RefreshToken: 'days' },
      }),
    );
    await client.send(new CreateGroupCommand({ UserPoolId: userPoolId, GroupName: APPROVERS_GROUP, Description: 'May approve or deny agent requests' }));
    const approverUsername = opts.approverEmail ?? 'approver@ackd.local';
    // Letters, digits and symbols from every class Cognito's default policy asks for.
    const approverPassword = `Ack-${randomBytes(12).toString('base64url')}9a`;
    await new ApproverAdmin(client, userPoolId).add(approverUsername, { password: approverPassword });
    saved = { userPoolId, clientId: appClient.UserPoolClient!.ClientId!, approverUsername, approverPassword };
    mkdirSync(resolve(file, '..'), { recursive: true });
    writeFileSync(file, JSON.stringify(saved, null, 2) + '\n', { mode: 0o600 });
  }
  if (opts.callbackUrls?.length) await setCallbackUrls(client, saved.userPoolId, saved.clientId, opts.callbackUrls);
  return saved;
}

async function setCallbackUrls(client: CognitoIdentityProviderClient, userPoolId: string, clientId: string, urls: readonly string[]): Promise<void> {
  const current = await client.send(new DescribeUserPoolClientCommand({ UserPoolId: userPoolId, ClientId: clientId }));
  const c = current.UserPoolClient!;
  await client.send(
    new UpdateUserPoolClientCommand({
      UserPoolId: userPoolId,
      ClientId: clientId,
      ClientName: c.ClientName,
      AllowedOAuthFlows: c.AllowedOAuthFlows,
      AllowedOAuthFlowsUserPoolClient: c.AllowedOAuthFlowsUserPoolClient,
      AllowedOAuthScopes: c.AllowedOAuthScopes,
      SupportedIdentityProviders: c.SupportedIdentityProviders,
      IdTokenValidity: c.IdTokenValidity,
      AccessTokenValidity: c.AccessTokenValidity,
      TokenValidityUnits: c.TokenValidityUnits,
      CallbackURLs: [...urls],
      LogoutURLs: [...urls],
    }),
  );
}
