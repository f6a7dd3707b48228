// Public surface of webhooks: signed (Standard Webhooks), retried, SSRF-guarded deliveries of job events.
export { WebhookClosedError, WebhookError, WebhookHeaderError, WebhookUrlError } from './errors.ts';
export type { WebhookAttempt, WebhookDelivery, WebhookEventType } from './webhook-delivery.ts';
export { WebhookDispatcher } from './webhook-dispatcher.ts';
export type { WebhookDispatcherOptions, WebhookLogger, WebhookSendOptions } from './webhook-dispatcher.ts';
