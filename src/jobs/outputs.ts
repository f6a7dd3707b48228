// The MIME type of an output by its name, for the routes that serve output content.
import { contentTypeFor } from '../comfy/index.ts';

/** MIME type guessed from a file name (the SDK's one table). */
export const contentTypeOf = contentTypeFor;
