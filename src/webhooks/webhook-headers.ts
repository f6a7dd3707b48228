// Caller-supplied extra headers of a webhook delivery (e.g. `x-request-id`): names and values
// validated, names lower-cased, and the headers the dispatcher owns (signature, framing, content type)
// refused so a caller can never weaken or forge what a receiver verifies.

import { copyValidHeaders, type HeaderRules, TRANSPORT_HEADERS } from '../http-headers.ts';
import { WebhookHeaderError } from './errors.ts';

/** Besides framing: what the dispatcher signs and says about itself (`webhook-*` is refused as a prefix: the spec may add more). */
const RULES: HeaderRules = {
  label: 'webhook header',
  maxCount: 32,
  reserved: {
    isReserved: (name) =>
      TRANSPORT_HEADERS.has(name) ||
      name === 'content-encoding' ||
      name === 'user-agent' ||
      name.startsWith('webhook-'),
    owner: 'the dispatcher',
  },
};

/** Validated extra headers with lower-case names; throws WebhookHeaderError (never echoing values). */
export function webhookHeaders(headers: Record<string, string> | undefined): Record<string, string> {
  if (headers === undefined) return {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
    throw new WebhookHeaderError('webhook headers must be an object of header names to string values');
  return copyValidHeaders(headers, RULES, (message) => new WebhookHeaderError(message), {});
}
