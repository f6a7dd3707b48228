// Decodes `data:` URIs. The URI is already in memory (it came in the JSON body), so decoding into one
// Buffer is the cheapest form; the size cap is checked before decoding.
import { InputInvalidError, InputTooLargeError } from '../errors.ts';

/** Decodes a data URI into its bytes and declared media type. */
export function decodeDataUri(uri: string, maxBytes: number): { bytes: Buffer; declaredType: string } {
  const comma = uri.indexOf(',');
  if (!uri.startsWith('data:') || comma < 0)
    throw new InputInvalidError('malformed data URI (expected data:<type>;base64,<data>)');
  const header = uri.slice(5, comma);
  const payload = uri.slice(comma + 1);
  const isBase64 = /;base64$/i.test(header);
  const declaredType = header.replace(/;base64$/i, '').split(';')[0] || 'text/plain';
  const estimated = isBase64 ? Math.floor((payload.length * 3) / 4) : payload.length;
  if (estimated > maxBytes + 3)
    throw new InputTooLargeError(
      `data URI input is about ${estimated} bytes, over the limit of ${maxBytes}`,
      { bytes: estimated, max_bytes: maxBytes },
    );
  let bytes: Buffer;
  if (isBase64) {
    const clean = payload.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new InputInvalidError('data URI is not valid base64');
    bytes = Buffer.from(clean, 'base64');
  } else {
    try {
      bytes = Buffer.from(decodeURIComponent(payload), 'utf8');
    } catch {
      throw new InputInvalidError('data URI has invalid percent-encoding');
    }
  }
  if (bytes.length > maxBytes)
    throw new InputTooLargeError(`data URI input is ${bytes.length} bytes, over the limit of ${maxBytes}`, {
      bytes: bytes.length,
      max_bytes: maxBytes,
    });
  if (bytes.length === 0) throw new InputInvalidError('data URI is empty');
  return { bytes, declaredType };
}
