// Public surface of webhooks: signed (Standard Webhooks), retried, SSRF-guarded deliveries of job events.
export { WebhookClosedError, WebhookError, WebhookUrlError } from './errors.ts';
export type { WebhookAttempt, WebhookDelivery, WebhookEventType } from './webhook-delivery.ts';
