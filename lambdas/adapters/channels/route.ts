import { isAckdError } from '../../core/errors.ts';
import type { Logger } from '../../core/ports.ts';
import { channelLabel, type ApprovalMessage, type ChannelNotifier } from './message.ts';

/** What became of one channel: `channel` is `<kind>:<name>`; `error` is safe to store and show. */
export interface ChannelOutcome {
  readonly channel: string;
  readonly ok: boolean;
  readonly error?: string;
}

/**
 * Sends a message to every channel of its route, all at once: one failing (or slow) channel
 * neither stops nor delays the others. Never throws: the caller decides what a partial failure
 * means (for instance, retry the route later when no channel succeeded).
 */
export class RouteNotifier {
  readonly #routes: ReadonlyMap<string, readonly ChannelNotifier[]>;
  readonly #logger: Logger | undefined;

  constructor(routes: ReadonlyMap<string, readonly ChannelNotifier[]>, opts: { logger?: Logger } = {}) {
    this.#routes = routes;
    this.#logger = opts.logger;
  }

  /** The configured route names. */
  get routes(): readonly string[] {
    return [...this.#routes.keys()];
  }

  has(route: string): boolean {
    return (this.#routes.get(route)?.length ?? 0) > 0;
  }

  /** The channels of a route (empty for an unknown route). */
  channels(route: string): readonly ChannelNotifier[] {
    return this.#routes.get(route) ?? [];
  }

  async send(m: ApprovalMessage): Promise<ChannelOutcome[]> {
    const channels = this.channels(m.route);
    if (channels.length === 0) {
      const error = `no channels are configured for route "${m.route.slice(0, 40)}"`;
      this.#logger?.error('notification route unknown', { route: m.route, request_id: m.record.request_id });
      return [{ channel: `route:${m.route.slice(0, 40)}`, ok: false, error }];
    }
    const settled = await Promise.allSettled(channels.map((c) => c.send(m)));
    return settled.map((s, i): ChannelOutcome => {
      const channel = channelLabel(channels[i]!);
      if (s.status === 'fulfilled') return { channel, ok: true };
      // Channel errors are AckdErrors written to be shown; anything else may hold what it should not.
      const error = isAckdError(s.reason) ? s.reason.message : 'internal error';
      this.#logger?.error('notification channel failed', {
        channel,
        route: m.route,
        request_id: m.record.request_id,
        error,
        ...(isAckdError(s.reason) ? {} : { cause: s.reason instanceof Error ? s.reason.name : typeof s.reason }),
      });
      return { channel, ok: false, error };
    });
  }
}
