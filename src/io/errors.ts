// Error classes of the io module: each has a stable `code` (callers branch on it, never on the message)
// and the HTTP status the gateway answers with when the error is the caller's fault.
import { GatewayError } from '../errors.ts';

/** Base class of every io error: a stable code, an HTTP status and optional safe details. */
export class IoError extends GatewayError {}

/** An input URL could not be fetched (network error, non-2xx answer, timeout, too many redirects). */
export class InputFetchError extends IoError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('input_fetch_failed', 422, message, options);
  }
}

/** An input is larger than `maxInputBytes`. */
export class InputTooLargeError extends IoError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('input_too_large', 413, message, { details });
  }
}

/** An input's bytes are not a media type the gateway accepts (checked by content, not by name or header). */
export class InputTypeRejectedError extends IoError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('input_type_rejected', 415, message, { details });
  }
}

/** A URL points at an address the SSRF guard refuses (loopback, private, link-local, metadata…). */
export class UrlForbiddenError extends IoError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('input_url_forbidden', 422, message, { details });
  }
}

/** An input value is malformed (bad data URI, unknown node or input name, unsupported scheme). */
export class InputInvalidError extends IoError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('input_invalid', 422, message, { details });
  }
}

/** An asset id does not exist in the asset store. */
export class AssetNotFoundError extends IoError {
  constructor(id: string) {
    super('asset_not_found', 404, `asset ${JSON.stringify(id)} does not exist`, { details: { id } });
  }
}

/** A job references assets that do not exist (v2 `missing_asset`, details.missing_ids). */
export class MissingAssetError extends IoError {
  constructor(ids: string[]) {
    super('missing_asset', 422, `unknown asset reference(s): ${ids.join(', ')}`, {
      details: { missing_ids: ids },
    });
  }
}

/** An uploaded asset's bytes do not match the client's `expected_hash`. */
export class HashMismatchError extends IoError {
  constructor(expected: string, actual: string) {
    super('hash_mismatch', 409, `expected_hash ${expected} does not match the content (${actual})`, {
      details: { expected, actual },
    });
  }
}

/** An asset upload is larger than the store accepts. */
export class PayloadTooLargeError extends IoError {
  constructor(maxBytes: number) {
    super('payload_too_large', 413, `upload exceeds the limit of ${maxBytes} bytes`, {
      details: { max_bytes: maxBytes },
    });
  }
}

/** Inline delivery was asked for outputs larger than `maxInlineBytes` in total. */
export class InlineTooLargeError extends IoError {
  constructor(maxBytes: number) {
    super(
      'output_inline_too_large',
      422,
      `inline outputs exceed ${maxBytes} bytes; ask for store "link" or "storage" instead`,
      { details: { max_inline_bytes: maxBytes } },
    );
  }
}

/** An output could not be read from the instance. */
export class OutputFetchError extends IoError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('output_fetch_failed', 502, message, options);
  }
}

/** An output could not be stored (upload failed, or the stored object did not verify). */
export class OutputStorageError extends IoError {
  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super('output_storage_failed', 502, message, options);
  }
}

/** The storage URL or output options are not usable. */
export class OutputConfigError extends IoError {
  constructor(message: string) {
    super('output_config_invalid', 422, message);
  }
}

/** The operation was aborted by its caller's signal or deadline. */
export class IoAbortError extends IoError {
  constructor(message = 'aborted', cause?: unknown) {
    super('io_aborted', 499, message, { cause });
  }
}

/** An input URL delivered slower than the minimum transfer rate (422). */
export class InputTooSlowError extends IoError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('input_too_slow', 422, message, { details });
  }
}

/** An image or video input has more pixels than MAX_INPUT_PIXELS / MAX_INPUT_VIDEO_PIXELS (a decompression bomb, 413). */
export class InputTooManyPixelsError extends IoError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('input_too_many_pixels', 413, message, { details });
  }
}

/**
 * A video input's container header could not be read (truncated, inconsistent, past the probe's
 * budget): its frame size is unknown, so it is refused rather than handed to a decoder (422).
 */
export class InputUnreadableError extends IoError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('input_unreadable', 422, message, { details });
  }
}

/** The disk under DATA_DIR is full (ENOSPC): nothing was stored (507). */
export class StorageFullError extends IoError {
  constructor(what: string, cause?: unknown) {
    super('storage_full', 507, `The gateway's disk is full; ${what} was not stored.`, { cause });
  }
}

/** Storing this asset would exceed ASSET_QUOTA_BYTES (507). */
export class AssetQuotaError extends IoError {
  constructor(quotaBytes: number, usedBytes: number, bytes: number) {
    super(
      'asset_quota_exceeded',
      507,
      `Asset storage is full: ${usedBytes} of ${quotaBytes} bytes used, this upload needs ${bytes} more. Delete assets or wait for them to expire.`,
      { details: { quota_bytes: quotaBytes, used_bytes: usedBytes, bytes } },
    );
  }
}
