export { SesNotifier, sesClient, approversFor, parseApproverRouting, parseEmail, type ApproverRouting, type SesNotifierOptions } from './notifier.ts';
export { renderConsentEmail, emailSubject, escapeHtml, oneLine, truncate, humanUtc, SUBJECT_MAX, type ConsentEmail } from './template.ts';
