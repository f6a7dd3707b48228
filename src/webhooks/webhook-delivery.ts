// The record of one webhook delivery and its attempts, as shown on GET /api/v2/jobs/{id}.

/** Webhook event types. */
export type WebhookEventType =
  | 'job.succeeded'
  | 'job.failed'
  | 'job.canceled'
  | 'job.progress'
  | 'pipeline.succeeded'
  | 'pipeline.failed'
  | 'pipeline.canceled';

/** One HTTP attempt of a delivery. */
export interface WebhookAttempt {
  attempt: number;
  started_at: string;
  duration_ms: number;
  /** HTTP status when the receiver answered. */
  status_code: number | null;
  /** Why the attempt failed (no secrets, URL without query). */
  error: string | null;
}

/** One delivery of one event to one URL. */
export interface WebhookDelivery {
  /** The `webhook-id` header: the same across retries, so receivers can deduplicate. */
  id: string;
  job_id: string;
  event: WebhookEventType;
  /** The URL without its query string (it may hold tokens). */
  url: string;
  status: 'pending' | 'delivered' | 'failed' | 'skipped';
  attempts: WebhookAttempt[];
  created_at: string;
  completed_at: string | null;
  /** The last error when status is failed or skipped. */
  error: string | null;
}
