export { SpireClient, fromGrpc, type MintedX509, type SpireBundle, type SpireClientOptions } from './client.ts';
export { createKeyAndCsr, derChainToPem, type KeyAndCsr } from './csr.ts';
export { SpireSvidMinter, remainingTtlSeconds, type X509SvidSigner } from './minter.ts';
