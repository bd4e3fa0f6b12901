/**
 * The one function of ackd/verify that the SVID proof of possession needs, as its own module so
 * svid-pop.ts can load it on the first proof (`await import`): the X.509 path validation and
 * @peculiar/x509 under it are then not evaluated at the MCP function's cold start, and the lazy
 * import carries only this export, not the whole verify library's.
 */
export { verifySvid } from '../verify/index.ts';
