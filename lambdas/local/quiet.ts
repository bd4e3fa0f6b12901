/**
 * Imported first by `npm start` (main.ts), before any AWS SDK client exists: turns off exactly the
 * SDK's Node-version support warning (its documented opt-out), printed once per client otherwise.
 * A value the user set is kept. Every other warning still shows.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
