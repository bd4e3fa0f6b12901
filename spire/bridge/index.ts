export { SpireClient, fromGrpc, type MintedX509, type SpireBundle, type SpireClientOptions } from './client.ts';
export { createKeyAndCsr, derChainToPem, type KeyAndCsr } from './csr.ts';
export { ISSUER_MESSAGES, IssuerCallError, describeError, issuerError, type IssuerErrorCode } from './errors.ts';
export { SpireSvidMinter, remainingTtlSeconds, type X509SvidSigner } from './minter.ts';
