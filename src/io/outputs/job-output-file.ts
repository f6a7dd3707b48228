// The shape of one delivered output: the Comfy API v2 Output object (comfy-api-v2.md §5) plus the
// fields the gateway adds (all additive, so v2 clients ignore them).

/** How outputs are delivered. */
export type OutputStore = 'link' | 'inline' | 'storage';

/** v2 output types. */
export type OutputType = 'image' | 'video' | 'audio' | 'text' | 'file' | 'latent';

/** One output of a job, as reported in `job.outputs[]`. */
export interface JobOutputFile {
  // v2 fields
  node_id: string;
  name: string;
  type: OutputType;
  content_type: string;
  size_bytes: number;
  /** `<job id>.<index>`: the output is an asset (GET /api/v2/assets/{id}). */
  id: string;
  /** `blake3:<hex>` is not computed for outputs (v2 allows null); see `sha256`. */
  hash: string | null;
  url: string;
  url_expires_at: string;
  job_id: string;
  // our extensions
  /** Position in job.outputs (the `{index}` of the gateway's content link). */
  index: number;
  sha256: string;
  /** Where ComfyUI holds the original: `/view?filename&subfolder&type`. */
  source: { filename: string; subfolder: string; type: string };
  /** The format the bytes were converted to, when conversion was asked for. */
  format?: 'png' | 'jpeg' | 'webp';
  quality?: number;
  /** Delivery used for this output. */
  store: OutputStore;
  /** Base64 content (store "inline"). */
  data_base64?: string;
  /** Text content (type "text"). */
  text?: string;
  /** The stored object's permanent location (store "storage"), e.g. `s3://bucket/prefix/job/…`. */
  storage_url?: string;
  /** True for preview (temp) outputs, only present when previews were asked for. */
  preview?: boolean;
}
