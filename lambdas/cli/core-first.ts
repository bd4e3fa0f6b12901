/**
 * Loads the audit event module before anything else of the CLI, so the core's import cycle
 * (policy → schemas → request → payload → event → quorum → policy) is entered where it resolves.
 * Remove once the cycle is broken (e.g. canonicalJson in a leaf module).
 */
import '../core/audit/event.ts';
