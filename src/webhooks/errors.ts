// Error classes of the webhooks module (stable codes; delivery failures are recorded, not thrown).
import { GatewayError } from '../errors.ts';

/** Base class of webhook errors. */
export class WebhookError extends GatewayError {}

/** A webhook URL is malformed or points at a refused address. */
export class WebhookUrlError extends WebhookError {
  constructor(message: string) {
    super('webhook_url_invalid', 422, message);
  }
}

/** The dispatcher was closed. */
export class WebhookClosedError extends WebhookError {
  constructor() {
    super('webhook_closed', 503, 'the webhook dispatcher is closed');
  }
}

/** Extra delivery headers are malformed or name a header the dispatcher owns. */
export class WebhookHeaderError extends WebhookError {
  constructor(message: string) {
    super('webhook_header_invalid', 422, message);
  }
}
