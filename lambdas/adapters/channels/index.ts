export { approvalsLine, channelError, channelLabel, reviewUrl, type ApprovalMessage, type ChannelKind, type ChannelNotifier } from './message.ts';
export { DEFAULT_RETRY_POLICY, parseRetryAfter, postWithRetry, retryPolicy, type Delivered, type PostRequest, type RetryPolicy } from './delivery.ts';
export {
  DEFAULT_TOLERANCE_SECONDS,
  DELIVERY_HEADER,
  MIN_WEBHOOK_SECRET_LENGTH,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  WEBHOOK_USER_AGENT,
  WebhookChannel,
  signWebhook,
  verifyWebhookSignature,
  webhookBody,
  type VerifyWebhookInput,
  type WebhookBody,
  type WebhookChannelOptions,
} from './webhook.ts';
export { SLACK_LIMITS, SlackChannel, escapeSlack, fitSlack, slackMessage, type SlackChannelOptions, type SlackMessage } from './slack.ts';
export { EmailChannel, routedConsentEmail, type EmailChannelOptions } from './email.ts';
export {
  ROUTES_ENV,
  ROUTE_NAME,
  SECRET_ARN,
  buildChannels,
  destinationUrlProblem,
  parseRoutes,
  routeSecretArns,
  secretsManagerReader,
  type ChannelDeps,
  type RouteSpec,
  type RoutesConfig,
  type SecretReader,
  type SecretRef,
  type SlackSpec,
  type WebhookSpec,
} from './config.ts';
export { RouteNotifier, type ChannelOutcome } from './route.ts';
